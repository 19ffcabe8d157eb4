// Package testprobe holds the gateway tests' probe programs: a plugin and
// an agent that report what they were started with (their environment,
// arguments, the digest of their own executable and a marker set at build
// time) so that tests can check what really runs.
package testprobe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
)

// Report is what a probe writes when it starts.
type Report struct {
	Marker string   `json:"marker"`
	Exe    string   `json:"exe"` // sha256:<hex> of /proc/self/exe
	Env    []string `json:"env"`
	Args   []string `json:"args"`
	Dir    string   `json:"dir"`
}

// Write writes the probe's report to path (atomically: a temporary file,
// then a rename), so that a reader never sees half of one.
func Write(path, marker string) error {
	dir, _ := os.Getwd()
	data, err := json.Marshal(Report{Marker: marker, Exe: selfDigest(), Env: os.Environ(), Args: os.Args, Dir: dir})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// selfDigest is the sha256 of the running executable, or why it cannot be
// read: the gateway runs its children from execute-only copies, which only
// root may read.
func selfDigest() string {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable: " + err.Error()
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
