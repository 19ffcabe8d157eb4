// Package digest computes and parses the content digests trustgate binds
// evidence to: SHA-256 (and SHA-512) of a file, and a canonical tree digest of
// a directory.
//
// The tree digest is golang.org/x/mod/sumdb/dirhash's "h1:" algorithm (the one
// go.sum uses): every regular file below the directory, named by its
// slash-separated path relative to the directory, is hashed with SHA-256; the
// lines "<hex sha256>  <name>\n", sorted by name, are hashed again with
// SHA-256; the result is "h1:" followed by that sum in standard base64.
// Directories themselves are not hashed (an empty directory changes nothing);
// a symbolic link to a file is followed only while its target stays inside
// the directory; a link to a directory, a link out, and anything that is
// neither a regular file nor a directory (a FIFO, a socket, a device) is
// refused. The same algorithm is implemented by the Go toolchain,
// so a digest can be checked without trustgate.
//
// This package imports nothing heavy: the gateway links it.
package digest
