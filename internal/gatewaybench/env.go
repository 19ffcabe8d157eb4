package main

import (
	"fmt"
	"os/exec"
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
