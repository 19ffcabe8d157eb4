// Package oms serializes model folders and verifies their OpenSSF model
// signatures (OMS, the format of sigstore/model-transparency's
// model_signing tool): one Sigstore bundle whose in-toto statement lists
// every file's (or every shard's) digest, verified through trustgate's one
// bundle verifier.
package oms
