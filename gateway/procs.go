package gateway

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until process pid (a child of the gateway, the leader
// of its own process group) has exited, without reaping it, then kills
// what is left of its group: what a plugin or agent started dies with it.
// The group id cannot name another group meanwhile, since the unreaped
// leader still holds it. When someone else reaped the leader first
// (ECHILD), the group is not signalled; the orphan sweep finds what it
// left.
func awaitExit(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		return
	}
}

// track and untrack keep the set of processes the gateway started and has
// not reaped yet; the orphan sweep leaves those alone.
func (g *Gateway) track(pid int) {
	g.procMu.Lock()
	defer g.procMu.Unlock()
	if g.procs == nil {
		g.procs = map[int]bool{}
	}
	g.procs[pid] = true
}

func (g *Gateway) untrack(pid int) {
	g.procMu.Lock()
	defer g.procMu.Unlock()
	delete(g.procs, pid)
}

// sweepOrphans kills and reaps every child of the gateway it did not
// start. The binary makes the gateway a child subreaper (Harden), so a
// process that a plugin or agent started and that left its process group
// (setsid) comes back to the gateway when its parent exits, instead of
// living on with what the plugin was granted.
func (g *Gateway) sweepOrphans() {
	g.startMu.Lock()
	defer g.startMu.Unlock()
	self := os.Getpid()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return
	}
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		ppid, state, ok := procStat(dir)
		if !ok || ppid != self {
			continue
		}
		g.procMu.Lock()
		ours := g.procs[pid]
		g.procMu.Unlock()
		if ours {
			continue
		}
		if state != 'Z' {
			g.log.Warn("killing a process a plugin or agent left behind", "pid", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// procStat reads a process's parent and state from /proc/PID/stat.
func procStat(dir string) (ppid int, state byte, ok bool) {
	data, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+4 >= len(data) {
		return 0, 0, false
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(fields[1]))
	return ppid, fields[0][0], err == nil
}
