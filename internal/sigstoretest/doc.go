// Package sigstoretest runs the real Sigstore services on 127.0.0.1 for
// keyless-signing end-to-end tests: an OIDC issuer, Fulcio, Rekor v2 and a
// timestamp authority (TSA).
//
//	env := sigstoretest.Start(t)
//	token := env.Token(t, "alice@example.com")
//	// sign with sigstore-go: sign.NewFulcio(&sign.FulcioOptions{BaseURL: env.FulcioURL}),
//	// sign.NewRekor(&sign.RekorOptions{BaseURL: env.RekorURL, Version: 2}),
//	// sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: env.TSAURL})
//	// verify with root.NewTrustedRootFromJSON(env.TrustedRootJSON), requiring
//	// a tlog entry and a signed timestamp, and the identity from
//	issuer, san := env.Identity("alice@example.com")
//
// # Services
//
// The binaries are built from the Go module proxy at pinned versions by
// internal/testtools (testtools.Fulcio, Rekor, TSA) and cached; CI builds
// them ahead of the tests with `go run ./internal/testtools/cmd/build-testtools`.
// Start skips the test when they are not built, or TRUSTGATE_SKIP_PEERS=1
// (both fail it under CI=true; see testtools.Need).
//
//   - OIDC issuer: an httptest server in the test process serving OpenID
//     discovery (/.well-known/openid-configuration) and a JWKS (/keys) with
//     one RSA key. Token mints RS256 ID tokens directly: iss = IssuerURL,
//     aud = "sigstore" (Audience), sub and email = the identity,
//     email_verified = true, valid ten minutes. ForgedToken is the same
//     signed with a key the JWKS does not have.
//   - Fulcio v1.8.8: `fulcio serve --ca=ephemeralca --ct-log-url=` (an
//     in-memory CA, no CT log, so no SCTs), trusting only the issuer above,
//     configured as Fulcio issuer type "email": the certificate's SAN is the
//     token's email (an rfc822Name) and its issuer extension is IssuerURL.
//     Use email addresses as identities; Identity returns the pair to check.
//   - Rekor v2 (rekor-tiles v2.3.0, POSIX storage in the test's temp dir),
//     with an Ed25519 checkpoint key made by Start and --hostname=127.0.0.1,
//     the host of RekorURL (sigstore-go verifies checkpoints against the
//     host of the log's base_url). Its log ID, in the trusted root and in
//     every entry, is the C2SP signed-note key hash (RekorLogID), not the
//     SHA-256 of the key. Rekor v2 entries carry no integrated time, so
//     verifiers need the TSA's signed timestamp; each write takes about a
//     second (the log publishes a checkpoint every 500ms and Rekor polls
//     for it once a second).
//   - timestamp-authority v2.1.3: `timestamp-server serve
//     --timestamp-signer=memory --disable-ntp-monitoring`. It always binds
//     its metrics on :2112 (there is no flag), so that two test processes
//     do not collide it runs in a private network namespace and serves on a
//     Unix socket that the test forwards a 127.0.0.1 port to; where the
//     kernel refuses a network namespace, TSAs are serialized machine-wide
//     with a lock file instead (Env.TSAMode says which; see tsa.go).
//
// Every port is passed explicitly, either a free port chosen on 127.0.0.1
// or 0 where the service supports it; a service that loses the race for its
// port is restarted on new ports. Nothing binds a fixed port, so Envs in
// one test process, and test processes run in parallel, do not collide
// (but in the lock fallback, Envs wait for each other: do not hold one Env
// while waiting on a test that starts another).
//
// Start waits (up to 60s each) until every service answers its health
// endpoint, failing the test with the service's log tail otherwise. Logs go
// to files in Env.Dir (the test's t.TempDir()); when the test fails, their
// tails are printed. The services run in their own process groups, are
// killed in t.Cleanup, and are killed by the kernel if the test binary dies
// first (Pdeathsig).
//
// # Trust material
//
// TrustedRootJSON (and the file TrustedRootPath) is a trusted root of media
// type TrustedRootMediaType, the one sigstore-go v1.3.0 reads, with the
// Fulcio CA chain, the Rekor log (Ed25519 public key, base URL RekorURL, log
// ID RekorLogID) and the TSA chain, each valid from an hour before Start,
// and no CT logs. SigningConfigPath is a signing config of media type
// SigningConfigMediaType naming Fulcio (API v1), the OIDC issuer, Rekor
// (API v2) and the TSA (its full URL), selector ANY.
package sigstoretest
