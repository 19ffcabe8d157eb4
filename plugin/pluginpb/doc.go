// Package pluginpb is the Go code generated from the plugin protocol,
// proto/trustgate/plugin/v1/hooks.proto (see plugin/gen.go).
package pluginpb
