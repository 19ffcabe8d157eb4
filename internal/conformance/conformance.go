// Package conformance reads the sigstore-conformance bundle-verify vectors
// vendored in testdata/sigstore-conformance (see its NOTICE), as the suite's
// README describes them, for the tests that run them through trustgate and
// through cosign.
package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// The identity and issuer the vectors use unless a vector names its own.
const (
	DefaultIdentity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
	DefaultIssuer   = "https://token.actions.githubusercontent.com"
)

// Vector is one bundle-verify case.
type Vector struct {
	Name string
	// WantPass is false for a vector whose folder ends in _fail.
	WantPass bool
	// Bundle, Artifact and TrustedRoot are file paths; TrustedRoot is the
	// vector's own, or the public-good root beside the vectors.
	Bundle, Artifact, TrustedRoot string
	// ArtifactSHA256 is the artifact's digest in hex.
	ArtifactSHA256 string
	// Key is the managed key's PEM file, when the vector has one;
	// otherwise Identity and Issuer are who must have signed.
	Key, Identity, Issuer string
	// Message says the bundle holds a message signature, not a DSSE
	// envelope; IntegratedTime that a log entry carries an integrated
	// time (Rekor v1), so that no RFC 3161 timestamp is needed for a time.
	Message, IntegratedTime bool
}

// Vectors reads every vector under dir (testdata/sigstore-conformance).
func Vectors(dir string) ([]Vector, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "bundle-verify"))
	if err != nil {
		return nil, err
	}
	var out []Vector
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v, err := read(dir, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func read(root, name string) (Vector, error) {
	dir := filepath.Join(root, "bundle-verify", name)
	v := Vector{Name: name, WantPass: !strings.HasSuffix(name, "_fail"), Bundle: filepath.Join(dir, "bundle.sigstore.json"),
		Artifact: filepath.Join(dir, "artifact"), TrustedRoot: filepath.Join(dir, "trusted_root.json"),
		Identity: DefaultIdentity, Issuer: DefaultIssuer}
	if !exists(v.Artifact) {
		v.Artifact = filepath.Join(root, "bundle-verify", "a.txt")
	}
	if !exists(v.TrustedRoot) {
		v.TrustedRoot = filepath.Join(root, "trusted_root.public-good.json")
	}
	if k := filepath.Join(dir, "key.pub"); exists(k) {
		v.Key = k
	}
	for _, f := range []struct {
		file string
		to   *string
	}{{"identity", &v.Identity}, {"issuer", &v.Issuer}} {
		if b, err := os.ReadFile(filepath.Join(dir, f.file)); err == nil {
			*f.to = strings.TrimSpace(string(b))
		}
	}
	data, err := os.ReadFile(v.Artifact)
	if err != nil {
		return v, err
	}
	sum := sha256.Sum256(data)
	v.ArtifactSHA256 = hex.EncodeToString(sum[:])
	raw, err := os.ReadFile(v.Bundle)
	if err != nil {
		return v, err
	}
	v.Message = strings.Contains(string(raw), `"messageSignature"`)
	var b struct {
		VerificationMaterial struct {
			TlogEntries []struct {
				IntegratedTime json.RawMessage `json:"integratedTime"`
			} `json:"tlogEntries"`
		} `json:"verificationMaterial"`
	}
	if json.Unmarshal(raw, &b) == nil {
		for _, e := range b.VerificationMaterial.TlogEntries {
			if t := strings.Trim(string(e.IntegratedTime), `"`); t != "" && t != "0" {
				v.IntegratedTime = true
			}
		}
	}
	return v, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
