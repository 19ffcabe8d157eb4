// Package verify decides whether an attestation proves what a caller needs:
// a Sigstore bundle's signature, certificate chain, log entries and
// timestamps as the trust material requires, then its DSSE payload type,
// its in-toto statement, the artifact's digest among the subjects, the
// predicate type and the signer. It is pure: inputs in, a result or a
// specific error out, no network and no file access.
package verify
