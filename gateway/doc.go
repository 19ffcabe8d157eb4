// Package gateway is trustgate-gateway's runtime: it verifies the gateway's
// own executable, its signed policy, its configuration (the stack
// manifest) and every plugin and agent, then starts each plugin and agent
// from the exact bytes it verified with only what the policy grants, and
// only then binds its port.
//
// The lifecycle, in order (each step is logged, and a failure before step 6
// is a *Refusal: nothing listens):
//
//  1. self: hash the running executable through /proc/self/exe, opened once;
//  2. policy: load the signed policy (policy.LoadSigned) for the manifest's
//     deployment, with its expiry and the rollback state kept in DataDir;
//  3. config: load the stack manifest, its gatewayConfig section included;
//  4. verify: copy every plugin and agent once into memory that cannot
//     change (a sealed memfd for a file, a private read-only snapshot for a
//     folder), hashing while copying, then run verify.Check on those
//     digests; a folder's interpreter is resolved, sealed and measured too,
//     and every local model's file or folder is measured where it lies (as
//     its OMS signature serializes it, when the manifest names one: the
//     signature must be a policy signer's and list exactly those files);
//  5. start: run each from its sealed copy or snapshot, in its own process
//     group, with an empty environment plus the policy's grants;
//  6. listen: bind the listener and serve /healthz, /readyz and
//     /v1/trustgate/status.
//
// While running, a watcher hashes every plugin's and agent's files again on
// a timer and on file change; a component whose files drifted is stopped
// and never restarted until they match again (or, under onDrift: stop, the
// gateway stops). A child that exits is restarted with backoff, each time
// from a new sealed copy that must have the verified digest. A local model
// is watched the same way; once its files drift, no request is routed to
// it until the gateway restarts and verifies it again.
//
// Requests are routed only to the models the policy names: one the stack
// serves and the policy does not name (a policy default of audit lets it
// through verification) is refused, and no provider sees the request.
//
// Linux only: memfd sealing and /proc are what make "run what was
// verified" hold.
package gateway
