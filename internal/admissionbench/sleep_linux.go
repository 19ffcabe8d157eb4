package main

import (
	"syscall"
	"time"
)

// sleepUntil returns at t, within tens of microseconds. time.Sleep alone
// can wake a millisecond late: when the process is idle, the Go runtime
// waits for its next timer in epoll_wait, whose timeout is in whole
// milliseconds, and a millisecond of the generator's own lateness would
// be charged to every review it delays. So the last stretch is slept in
// nanosleep(2), on a thread of its own.
func sleepUntil(t time.Time) {
	if d := time.Until(t) - 2*time.Millisecond; d > 0 {
		time.Sleep(d)
	}
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil) // interrupted: the loop sleeps the rest
	}
}
