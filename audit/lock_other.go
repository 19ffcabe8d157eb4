//go:build !unix

package audit

import "os"

// lockFile does nothing where flock is missing: one Writer per log is
// then the caller's to keep.
func lockFile(*os.File) error { return nil }

// syncDir does nothing where folders cannot be flushed.
func syncDir(string) error { return nil }
