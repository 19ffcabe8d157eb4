// Package sbomprop names the CycloneDX properties trustgate writes on the
// components of an SBOM, for the packages that read them (policy, verify)
// without importing the SBOM generator.
package sbomprop

import (
	"encoding/json"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// Property names trustgate writes on components.
const (
	Kind = "trustgate:kind" // gateway, plugin, agent, image or model
	Role = "trustgate:role" // the component's role from the manifest
	Path = "trustgate:path" // path relative to the manifest
	// Digest is sha256:<hex> for files and images, h1:<base64> for
	// directories, and for a model with an OMS signature the sha256 of
	// its serialization (see package localmodel).
	Digest  = "trustgate:digest"
	Command = "trustgate:command" // JSON array: command then args
	Image   = "trustgate:image"   // name of the image entry a component runs from
	// ImageSource says where an image was read: ref, ociLayout or archive.
	ImageSource = "trustgate:image:source"
	// ImageConfig is an image's config digest (its "image ID").
	ImageConfig = "trustgate:image:config"
	Provider    = "trustgate:provider" // a model's provider
	// Fallbacks are a model's fallback providers, in order: a JSON array
	// (see ListValue), absent when it has none.
	Fallbacks  = "trustgate:fallbacks"
	Signature  = "trustgate:signature"  // a local model's OMS signature, relative to the manifest
	Credential = "trustgate:credential" // a provider's credential reference: env:NAME or file:PATH
)

// Get returns the value of the first property called name, or "".
func Get(ps *[]cdx.Property, name string) string {
	if ps == nil {
		return ""
	}
	for _, p := range *ps {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// CommandValue is the value of the Command property for a component
// started with argv (its command, then its args): argv as a JSON array,
// or null for none. Writers and readers compare these strings.
func CommandValue(argv []string) string {
	b, _ := json.Marshal(argv)
	return string(b)
}

// ListValue is the value of a list property (Fallbacks): the names as a
// JSON array. Writers and readers compare these strings.
func ListValue(names []string) string {
	b, _ := json.Marshal(names)
	return string(b)
}

// List reads a list property written by ListValue; a value that is not a
// JSON array of strings gives nil and false.
func List(ps *[]cdx.Property, name string) ([]string, bool) {
	v := Get(ps, name)
	if v == "" {
		return nil, true
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, false
	}
	return out, true
}
