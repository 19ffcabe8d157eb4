// Package buildinfo says what a trustgate binary was built from, read from
// the Go build information the toolchain embeds: the module version, the
// commit and whether the tree had changes, and the versions of the
// libraries its verdicts rest on.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Libraries are the modules whose versions `version` reports: the ones a
// verdict rests on.
var Libraries = []string{
	"github.com/sigstore/sigstore-go",
	"github.com/in-toto/in-toto-golang",
	"github.com/anchore/syft",
	"github.com/CycloneDX/cyclonedx-go",
	"github.com/google/go-containerregistry",
}

// Info is what a binary was built from.
type Info struct {
	// Version is the module version ("(devel)" for a build in a checkout).
	Version string `json:"version"`
	// Commit, Time and Modified come from the version control stamp of a
	// build in a checkout ("" and false without one).
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	// Libraries maps each of Libraries linked in to its version.
	Libraries map[string]string `json:"libraries,omitempty"`
}

// Read returns the running binary's build information.
func Read() Info {
	info := Info{Version: "(unknown)", Go: runtime.Version(), Libraries: map[string]string{}}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.Version = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		for _, lib := range Libraries {
			if d.Path == lib {
				v := d.Version
				if d.Replace != nil {
					v += " => " + d.Replace.Path + " " + d.Replace.Version
				}
				info.Libraries[lib] = v
			}
		}
	}
	return info
}

// String is the text `trustgate version` prints: the version line, then
// one line per library linked in, in Libraries' order.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version  %s\n", i.Version)
	if i.Commit != "" {
		commit := i.Commit
		if i.Modified {
			commit += " (modified)"
		}
		fmt.Fprintf(&b, "commit   %s\n", commit)
	}
	if i.Time != "" {
		fmt.Fprintf(&b, "time     %s\n", i.Time)
	}
	fmt.Fprintf(&b, "go       %s\n", i.Go)
	for _, lib := range Libraries {
		if v, ok := i.Libraries[lib]; ok {
			fmt.Fprintf(&b, "%s %s\n", lib, v)
		}
	}
	return b.String()
}

// Short is the one-line version (cobra's --version).
func (i Info) Short() string {
	s := i.Version
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (" + c
		if i.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s
}
