// Package benchenv describes the machine and the sources a benchmark
// program measured, for its report.
package benchenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// LoadAverage is /proc/loadavg's 1-minute average ("?" when unknown).
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// SourceVersion is the commit of the git work tree at dir, with the number
// of files that differ from it ("" without git).
func SourceVersion(ctx context.Context, dir string) string {
	head, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := "commit " + strings.TrimSpace(string(head))
	if st, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain").Output(); err == nil {
		if n := bytes.Count(st, []byte{'\n'}); n > 0 {
			v += fmt.Sprintf(" with %d files changed or new", n)
		}
	}
	return v
}
