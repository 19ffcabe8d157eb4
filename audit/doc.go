// Package audit keeps trustgate's tamper-evident audit trail: a hash-chained
// JSON-lines log with signed checkpoints (Open, Writer.Append), and the
// check that names the first line changed, removed, reordered or forged
// (Verify).
//
// # Format
//
// A log is UTF-8 text, one JSON object per line, each line ended by "\n".
// Every line carries seq (1 for the first line, then one more per line),
// time (RFC 3339 with nanoseconds, UTC) and prev: the lowercase hex SHA-256
// of the previous line's bytes, its "\n" excluded (64 zeros for the first
// line). An entry line holds the caller's event, a JSON object, as given:
//
//	{"seq":1,"time":"2026-04-01T10:00:00.123456789Z","prev":"000…000","event":{"model":"gpt-4o","status":200}}
//
// A checkpoint line, written every Options.Every entries, after
// Options.Interval, on Writer.Checkpoint and on Writer.Close, signs the
// chain so far:
//
//	{"seq":2,"time":"…","prev":"<hash of line 1>","checkpoint":{"count":1,"head":"<hash of line 1>","keyId":"…","signature":"…"}}
//
// count is the number of entry lines before the checkpoint (checkpoints not
// counted), head equals prev, keyId is the standard base64 of the SHA-256 of
// the signing key's PKIX DER public key (attest.KeyHint, the name bundles
// give a key), and signature is the standard base64 of a signature over
// these bytes (each line ended by "\n"):
//
//	trustgate-audit-checkpoint v1
//	seq <seq>
//	count <count>
//	head <head>
//	time <time>
//	keyId <keyId>
//
// ECDSA signs the SHA-256 (P-256), SHA-384 (P-384) or SHA-512 (P-521) of
// those bytes, ASN.1 encoded; Ed25519 signs the bytes themselves. Lines are
// canonical: keys in the order shown, no spaces, the event in compact JSON;
// Verify refuses any other spelling of the same values, so that one log has
// one reading. No line is longer than MaxLine bytes.
//
// # What a verified log proves
//
// Anyone who can write the file can change it; the chain and the
// checkpoints make every change up to the last checkpoint visible. An entry
// edited, removed, duplicated or moved breaks the chain or the sequence
// (ErrChanged, ErrMissing, ErrReordered). An entry edited and the chain
// rebuilt after it no longer matches the head a checkpoint signed, and a
// checkpoint cannot be made again without the private key (ErrForged). A
// checkpoint copied from another log, or another place in this one, signs
// another head and count (ErrForged).
//
// What the file alone cannot show: that lines were cut from its end. The
// entries after the last checkpoint (Report.UnsignedTail) are chained but
// not signed: they can be rewritten or removed without a trace. And the
// file can be cut back to any earlier checkpoint, or swapped whole for
// another log the same key signed, and still verify. Detecting those needs
// an anchor kept outside the file: the last checkpoint's seq and line hash
// (Report.LastCheckpointSeq and LastCheckpointHash) sent to an agent or
// another host, or the log shipped as it grows.
//
// This package imports only the standard library: the gateway links it.
package audit
