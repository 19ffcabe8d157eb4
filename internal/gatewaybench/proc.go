package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trustgate/trustgate/internal/testproc"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times
// (100 on every Linux this runs on; reading sysconf would need cgo).
const clockTicks = 100

// proc is a process this program started (the gateway or the bare proxy)
// and, once pinned, the processes it started (the gateway's plugins).
type proc struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	logFile  *os.File
	done     chan struct{}
	children []procID
}

// procID names a process by pid and start time, so that a pid the kernel
// reused is never signalled.
type procID struct {
	pid   int
	start string
}

// startProc starts cmd with its stderr (and, unless cmd.Stdout is set,
// its stdout) written to logPath. It gets SIGTERM if this program dies.
func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	cmd.Stderr = f
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, then SIGKILL after 15 s; then whatever
// it started and left behind.
func (p *proc) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	for _, c := range p.children {
		if st, err := readStat(c.pid); err == nil && st.start == c.start {
			if st.pgrp == c.pid {
				_ = syscall.Kill(-c.pid, syscall.SIGKILL)
			}
			_ = syscall.Kill(c.pid, syscall.SIGKILL)
		}
	}
	p.logFile.Close()
}

// logTail is the end of the process's log, for an error message.
func (p *proc) logTail() string {
	return strings.TrimSpace(testproc.Tail(p.logPath, 4<<10))
}

// waitReady polls url until it answers 200, the process exits, or limit
// passes.
func (p *proc) waitReady(ctx context.Context, url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%s); its log ends:\n%s", p.name, p.cmd.ProcessState, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s was not ready within %s: %w; its log ends:\n%s", p.name, limit, ctx.Err(), p.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readLine reads the first line r gives, within limit.
func readLine(r io.Reader, limit time.Duration) (string, error) {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(io.LimitReader(r, 4<<10)).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		return s, nil
	case <-time.After(limit):
		return "", fmt.Errorf("no line within %s", limit)
	}
}

// track records the processes p started so far (the gateway's plugins):
// stop kills any it leaves behind, pin and cpuTime include them.
func (p *proc) track() { p.children = descendants(p.pid()) }

// pin binds the process, every thread of it and every process track
// found to cpu, with taskset.
func (p *proc) pin(cpu int) error {
	for _, pid := range append([]int{p.pid()}, pids(p.children)...) {
		if err := pinPID(pid, cpu); err != nil {
			return fmt.Errorf("pinning %s: %w", p.name, err)
		}
	}
	return nil
}

func pids(ids []procID) []int {
	out := make([]int, 0, len(ids))
	for _, c := range ids {
		out = append(out, c.pid)
	}
	return out
}

// pinPID runs taskset -a -cp CPU PID: -a sets every thread, not only the
// main one (a Go program has several before anyone can pin it).
func pinPID(pid, cpu int) error {
	out, err := exec.Command("taskset", "-a", "-cp", strconv.Itoa(cpu), strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -cp %d %d: %w: %s", cpu, pid, err, bytes.TrimSpace(out))
	}
	return nil
}

// memory is a process's resident set now and at its peak, in KiB.
type memory struct{ rss, hwm int64 }

func readMemory(pid int) (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for line := range strings.Lines(string(data)) {
		field, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		switch field {
		case "VmRSS":
			m.rss = v
		case "VmHWM":
			m.hwm = v
		}
	}
	if m.rss == 0 {
		return m, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return m, nil
}

// cpuTime is the CPU time (user and system) the process and the children
// it was pinned with have used so far.
func (p *proc) cpuTime() time.Duration {
	var ticks uint64
	for _, pid := range append([]int{p.pid()}, pids(p.children)...) {
		if st, err := readStat(pid); err == nil {
			ticks += st.utime + st.stime
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// stat is the part of /proc/PID/stat this program reads.
type stat struct {
	ppid, pgrp   int
	utime, stime uint64
	start        string
}

func readStat(pid int) (stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name, field 2, is in parentheses and may hold anything.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return stat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3
	if len(f) < 20 {
		return stat{}, errors.New("short /proc stat")
	}
	var st stat
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.utime, _ = strconv.ParseUint(f[11], 10, 64)
	st.stime, _ = strconv.ParseUint(f[12], 10, 64)
	st.start = f[19]
	return st, nil
}

// descendants lists every live process below pid.
func descendants(pid int) []procID {
	entries, _ := os.ReadDir("/proc")
	parent := map[int][]procID{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(n); err == nil {
			parent[st.ppid] = append(parent[st.ppid], procID{n, st.start})
		}
	}
	var out []procID
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 1024 {
		for _, c := range parent[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// allowedCPUs is this process's CPU affinity list (Cpus_allowed_list).
func allowedCPUs() ([]int, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(data)) {
		v, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		var cpus []int
		for _, r := range strings.Split(strings.TrimSpace(v), ",") {
			lo, hi, found := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if found {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || b < a || b-a > 4096 {
				return nil, fmt.Errorf("unreadable Cpus_allowed_list %q", strings.TrimSpace(v))
			}
			for c := a; c <= b; c++ {
				cpus = append(cpus, c)
			}
		}
		return cpus, nil
	}
	return nil, errors.New("no Cpus_allowed_list in /proc/self/status")
}

// removeAll removes dir, making read-only folders in it (a snapshot the
// gateway left) writable first.
func removeAll(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}
