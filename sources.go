// Package trustgate holds no API: it is the module's root, the one folder
// from which go:embed reaches the sources of the module's other packages.
// Sources carries the ones the example deployment's Go programs are built
// from, so that trustgate demo can build them with the local Go toolchain
// outside a trustgate checkout (internal/example writes them out as a
// module). Use the packages below it.
package trustgate

import "embed"

// Sources is go.mod, go.sum and the Go files of every package of this
// module that trustgate-gateway and the example's guardrail plugin and
// audit agent (examples/deployment/cmd) import: the same bytes this binary
// was built from. The patterns take the packages' test files too (go:embed
// cannot leave them out); whoever writes the sources out skips them.
// internal/example's tests check the list against go list -deps.
//
//go:embed go.mod go.sum
//go:embed attest/*.go audit/*.go bundle/*.go digest/*.go gather/*.go localmodel/*.go oms/*.go pin/*.go policy/*.go sbomprop/*.go seal/*.go stack/*.go tufroot/*.go verifier/*.go verify/*.go
//go:embed gateway/*.go gateway/clientkeys/*.go plugin/*.go plugin/pluginpb/*.go plugin/sdk/*.go
//go:embed internal/atomicfile/*.go internal/buildinfo/*.go internal/jsonx/*.go internal/readfile/*.go internal/safetext/*.go internal/yamlx/*.go
//go:embed cmd/trustgate-gateway/*.go cmd/trustgate-gateway/internal/app/*.go
//go:embed examples/deployment/cmd/audit-agent/*.go examples/deployment/cmd/guardrail/*.go
var Sources embed.FS
