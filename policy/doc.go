// Package policy reads, checks and evaluates trustgate's signed policy: which
// signers count, which components may run with which digests, signers and
// attestations, what each may receive, where each credential may go, and
// which packages must never be present.
//
// Evaluation is a pure function of a loaded Policy and Facts gathered
// elsewhere (Evaluate); loading a signed policy (LoadSigned) checks its
// signature, digest, expiry and version against the last one accepted.
package policy
