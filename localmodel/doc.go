// Package localmodel measures a model that a stack manifest serves from a
// local file or folder, and matches a verified OpenSSF model signature (OMS)
// against what was measured.
//
// A model without a signature is measured by the SHA-256 of its file or
// the h1 tree digest of its folder, as plugins are. A model whose manifest
// entry gives a signature (stack.Model.Signature, model.sig as
// model_signing writes it) is serialized as that signature says (package
// oms: by files or by shards, SHA-256, its ignore paths, its symbolic link
// rule; the git paths and the signature file itself left out as
// model_signing verify leaves them out) and pinned by the SHA-256 of that
// serialization, the digest the signature's subject names. The signature's
// parameters are read before it is verified, only to know how to
// serialize: a signature counts only once Match finds that the statement a
// trusted signer signed lists exactly the files measured.
//
// The package reads files; matching is pure. It imports nothing heavy:
// the gateway and the verifier link it.
package localmodel
