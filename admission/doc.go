// Package admission is trustgate's Kubernetes validating admission webhook:
// it admits a workload only when every image its pod spec names (init,
// regular and ephemeral containers, image volumes) passes the signed
// policy, the same
// verification `trustgate verify` gives an image.
//
// For each image the webhook finds the policy's image entry by repository
// (policy.Policy.ImageComponent; an image no entry names is decided by the
// policy's default, with no registry call), pins the reference to a digest
// (a tag is resolved, and denied unless tags are allowed: the kubelet pulls
// it later and may get other bytes), reads the attestations stored beside
// that digest (referrers, then the cosign tag) and decides with
// verify.CheckImage. Verdicts are cached by policy digest, entry and image
// digest; concurrent reviews of one image share one verification; a review
// is answered within a deadline shorter than the webhook's timeoutSeconds,
// denied when the registry did not answer in time.
//
// The policy is a PolicySource: loaded and verified at start, re-read when
// its files change; a policy that fails to load (bad signature, expired,
// rolled back) leaves the one in force.
//
// The package is pure of flags: `trustgate admission serve` and `trustgate
// admission check` are thin layers over Handler, Serve and
// Checker.CheckManifests. deploy/ holds the manifests that install it.
package admission
