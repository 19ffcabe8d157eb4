// Package sbom inventories a gateway deployment, described by a stack
// manifest, as one CycloneDX SBOM: the deployment as the BOM's subject, one
// component for the gateway and each plugin, agent, image and model (with
// their digests and roles), the packages syft finds inside each nested under
// it, the model providers as services, and the dependency graph between them.
//
// Output is deterministic: the same manifest and the same files give the
// same bytes. The serial number is derived from the content and there is no
// timestamp unless the caller gives one.
//
// This package links syft; the gateway and the verifier must not import it.
package sbom
