// Package peertest holds the library tests that run real peer programs:
// cosign, and Fulcio, Rekor v2 and a timestamp authority on loopback
// (internal/sigstoretest). They need the peers built first (make peers);
// without them they skip, except under CI=true, where they fail. The unit
// tests of the same code run in-process (testsign.Virtual) in each
// package. The CLI's own peer tests (cosign and sigstore-js accepting its
// output, keyless signing end to end) stay beside the CLI's test harness.
package peertest
