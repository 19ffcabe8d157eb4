//go:build unix

package oms

import (
	"os"
	"syscall"
)

// openFlags open a listed file for reading without blocking, should it
// have been swapped for a FIFO since it was listed (it is then refused).
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
