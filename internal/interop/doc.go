// Package interop checks trustgate's Sigstore bundles against two independent
// peer verifiers, cosign and sigstore-js; by hand, the same checks are
// `cosign verify-blob-attestation --bundle BUNDLE --key KEY.pub --type cyclonedx --trusted-root ROOT --insecure-ignore-tlog=true FILE`
// (ROOT being a file holding just {"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"})
// and, after `bash .ci/install-sigstore-js`,
// `node internal/interop/js/verify.mjs --bundle BUNDLE --key KEY.pub --artifact FILE --type https://cyclonedx.org/bom`,
// each of which exits 0 only when the bundle's signature verifies with KEY.pub
// and its in-toto statement's subject is FILE's sha256.
package interop
