//go:build !unix

package oms

import "os"

// openFlags open a listed file for reading.
const openFlags = os.O_RDONLY
