// Package seal copies a file into sealed anonymous memory (a Linux memfd),
// hashing the bytes as they are written, so that trustgate runs exactly the
// bytes it verified.
//
// A sealed File can no longer be written, truncated or grown by anyone,
// this process included, and is not reachable through any path on disk, so
// replacing the original file after the copy changes nothing. A child runs
// it with exec.Cmd{Path: f.Path()}, the "/proc/self/fd/N" name of the copy.
// Only ELF binaries can be run that way: the descriptor is close-on-exec,
// so an interpreter started for a "#!" script finds /proc/self/fd/N closed
// when it opens the script and fails.
//
// Sealed memory files are Linux only; elsewhere Copy and CopyFile return
// ErrUnsupported.
package seal
