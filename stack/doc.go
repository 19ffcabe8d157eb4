// Package stack parses the stack manifest: the YAML file that says what one
// AI gateway deployment runs (the gateway, its plugins and compliance agents,
// model providers, models and container images).
//
// Load parses strictly and checks everything that can be checked without
// running anything: names, references between entries, that each path stays
// inside the manifest's folder and exists, and that no credential is written
// as a value. Every error is a *FieldError naming the field and its line.
// This package imports nothing heavy: the gateway and the verifier link it.
package stack
