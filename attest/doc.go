// Package attest makes in-toto attestations (Statement v1 in a DSSE envelope)
// and signs them into Sigstore bundles v0.3, with a key or keyless through
// Fulcio, and keeps them beside OCI images as referrers or cosign tags.
//
// It never imports sbom: verify and the gateway link it.
package attest
