package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// placement is where the processes run: the proxy on one core, this
// program (load generator and stub) on another.
type placement struct {
	pinned      bool
	proxy, load int
	why         string // why nothing is pinned
}

func place() placement {
	cpus, err := allowedCPUs()
	switch {
	case err != nil:
		return placement{why: err.Error()}
	case len(cpus) < 2:
		return placement{why: fmt.Sprintf("only %d CPU allowed", len(cpus))}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return placement{why: "taskset is not installed (util-linux)"}
	}
	return placement{pinned: true, proxy: cpus[0], load: cpus[1]}
}

// environment is what the report says about the run's conditions.
type environment struct {
	where  placement
	load   string // /proc/loadavg's 1-minute average, before the run
	source string // the commit built, and whether the tree differs
}

func loadAverage() string {
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

// sourceVersion is the commit the binaries were built from, with the
// number of files that differ from it ("" without git).
func sourceVersion(ctx context.Context, root string) string {
	head, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := "commit " + strings.TrimSpace(string(head))
	if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain").Output(); err == nil {
		if n := bytes.Count(st, []byte{'\n'}); n > 0 {
			v += fmt.Sprintf(" with %d files changed or new", n)
		}
	}
	return v
}
