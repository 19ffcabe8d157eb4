// Package plugin is the protocol between trustgate-gateway and its plugins:
// the host side that starts a plugin from a caller-built command and calls
// its hooks over gRPC (hashicorp/go-plugin), and the pieces plugin/sdk shares.
package plugin
