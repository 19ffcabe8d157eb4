// Package deployment holds trustgate's example deployment: its stack
// manifest, the sources of its Go programs (under cmd/) and its Python
// plugin. internal/example builds it into a folder for the demo and tests.
package deployment

import "embed"

// Files is the checked-in part of the example: stack.yaml and plugins/.
//
//go:embed stack.yaml all:plugins
var Files embed.FS
