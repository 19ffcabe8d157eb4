//go:build !linux

package main

import "time"

// sleepUntil returns at t, as closely as time.Sleep manages.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
