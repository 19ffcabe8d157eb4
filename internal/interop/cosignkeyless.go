package interop

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/internal/sigstoretest"
)

// CosignKeyless is what cosign v2.6.5 needs to sign keyless against a
// Sigstore of its own on loopback (internal/sigstoretest), with no
// transparency log: the services' URLs, the trusted root, and an OIDC
// identity token.
type CosignKeyless struct {
	// FulcioURL is Fulcio's base URL (--fulcio-url).
	FulcioURL string
	// IssuerURL is the OIDC issuer (--oidc-issuer). With a token given,
	// cosign does not contact it; Fulcio reads the issuer from the token.
	IssuerURL string
	// TSAURL is the timestamp endpoint, .../api/v1/timestamp
	// (--timestamp-server-url).
	TSAURL string
	// TrustedRoot is a trusted_root.json naming that Fulcio and TSA
	// (--trusted-root); given, cosign does not fetch the public-good root
	// over TUF.
	TrustedRoot string
	// Token is the OIDC ID token (--identity-token).
	Token string
}

// args are the flags of a keyless cosign sign or attest without a log:
//
//	--fulcio-url F --oidc-issuer I --identity-token T --timestamp-server-url TSA
//	--trusted-root ROOT --insecure-skip-verify --tlog-upload=false
//	--allow-insecure-registry --yes
//
// --insecure-skip-verify is required: this Fulcio has no CT log, and
// without it cosign requires an SCT on the certificate and verifies it
// against the trusted root's CT logs (fulcioverifier.NewSigner: "verifying
// SCT using trusted root: only able to verify 0 SCT entries"). The trusted
// root is read for that check alone (and for --signing-config, not used),
// so with --insecure-skip-verify it only keeps cosign from trying TUF
// (which, through the dead proxy, fails with a warning and goes on).
// Neither SIGSTORE_ROOT_FILE nor --certificate-chain is needed to sign:
// cosign does not check Fulcio's chain when signing. --oidc-issuer is
// unused with a token; --yes and --allow-insecure-registry are not needed
// either (no log upload to confirm; go-containerregistry speaks plain HTTP
// to 127.0.0.1 by itself), and are given as the key-signing helpers do.
func (k CosignKeyless) args() []string {
	return []string{
		"--fulcio-url", k.FulcioURL, "--oidc-issuer", k.IssuerURL, "--identity-token", k.Token,
		"--timestamp-server-url", k.TSAURL, "--trusted-root", k.TrustedRoot,
		"--insecure-skip-verify", "--tlog-upload=false", "--allow-insecure-registry", "--yes",
	}
}

// CosignSignKeyless runs, offline but for the local Sigstore,
//
//	cosign sign KEYLESS-FLAGS [EXTRA...] IMAGE
//
// (see CosignKeyless): a fresh key, a Fulcio certificate for the token's
// identity, a plain signature of IMAGE (by digest, in a registry on
// loopback over plain HTTP) that cosign stores as a layer of the tag
// sha256-<hex>.sig, with the certificate, its chain and the TSA's RFC 3161
// timestamp over the raw signature in annotations, and no Rekor bundle. It
// returns cosign's output.
func CosignSignKeyless(t testing.TB, k CosignKeyless, image string, extra ...string) string {
	t.Helper()
	args := append(append([]string{"sign"}, k.args()...), extra...)
	out, err := runCosign(t, "", cosignEnv(t), append(args, image)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CosignAttestKeyless runs, offline but for the local Sigstore,
//
//	cosign attest KEYLESS-FLAGS --type TYPE --predicate PREDICATE [EXTRA...] IMAGE
//
// (see CosignKeyless): an in-toto attestation of IMAGE in a DSSE envelope,
// stored as a layer of the tag sha256-<hex>.att, with the certificate, its
// chain and the TSA's RFC 3161 timestamp in annotations, and no Rekor
// bundle. cosign v2.6.5 asks the TSA to timestamp the whole envelope's
// JSON there, not the DSSE signature (cmd/cosign/cli/attest/attest.go:
// tsaPayload = signedPayload unless --new-bundle-format). It returns
// cosign's output.
func CosignAttestKeyless(t testing.TB, k CosignKeyless, predicateType, predicate, image string, extra ...string) string {
	t.Helper()
	args := append(append([]string{"attest", "--type", predicateType, "--predicate", predicate}, k.args()...), extra...)
	out, err := runCosign(t, "", cosignEnv(t), append(args, image)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CosignKeylessCheck is what cosign verify or verify-attestation requires
// of a keyless signature: the certificate's identity (SAN) and OIDC
// issuer, exact, and the trust material its chain and timestamps are
// checked against.
type CosignKeylessCheck struct {
	Identity, Issuer string
	// TrustedRoot is a trusted_root.json with one Fulcio CA and one TSA
	// (and, for Log, one transparency log).
	TrustedRoot string
	// Log is whether a transparency log entry is required (cosign's
	// default). When false, --insecure-ignore-tlog is passed; when true,
	// --offline, so that cosign looks for the entry in the layer's Rekor
	// bundle annotation only, never online.
	Log bool
}

// common are the flags of both commands:
//
//	--certificate-identity ID --certificate-oidc-issuer ISSUER --use-signed-timestamps
//	--insecure-ignore-sct --allow-insecure-registry (--insecure-ignore-tlog | --offline)
//
// --use-signed-timestamps: cosign v2.6.5 verifies the RFC 3161 timestamp
// annotation only when asked (CheckOpts.UseSignedTimestamps, which
// --timestamp-certificate-chain also sets). A layer with no timestamp
// annotation is not refused for that: cosign then checks the certificate's
// validity at the current time (pkg/cosign/verify.go verifyInternal).
// --insecure-ignore-sct: the certificate has no SCT, and there is no CT
// log to check one against.
func (c CosignKeylessCheck) common() []string {
	args := []string{
		"--certificate-identity", c.Identity, "--certificate-oidc-issuer", c.Issuer,
		"--use-signed-timestamps", "--insecure-ignore-sct", "--allow-insecure-registry",
	}
	if c.Log {
		return append(args, "--offline")
	}
	return append(args, "--insecure-ignore-tlog")
}

// CosignVerifyKeyless runs, offline,
//
//	cosign verify COMMON-FLAGS --trusted-root ROOT IMAGE
//
// (see CosignKeylessCheck.common). It returns cosign's output, and an
// error holding it when cosign refuses.
func CosignVerifyKeyless(t testing.TB, c CosignKeylessCheck, image string) (string, error) {
	t.Helper()
	args := append(append([]string{"verify"}, c.common()...), "--trusted-root", c.TrustedRoot, image)
	return runCosign(t, "", cosignEnv(t), args...)
}

// CosignVerifyAttestationKeyless runs, offline,
//
//	cosign verify-attestation --type TYPE COMMON-FLAGS \
//	  --certificate-chain FULCIO_CHAIN --timestamp-certificate-chain TSA_CHAIN IMAGE
//
// with, for c.Log, SIGSTORE_REKOR_PUBLIC_KEY=REKOR_KEY; the three files are
// taken from c.TrustedRoot (see KeylessTrustFiles). cosign v2.6.5's
// verify-attestation refuses --trusted-root for a keyless attestation of
// the tag scheme ("unsupported: trusted root path currently only
// supported with --new-bundle-format",
// cmd/cosign/cli/verify/verify_attestation.go), so the trust material is
// given the older way. cosign verifies the RFC 3161 timestamp of a .att
// layer over the layer's bytes, the whole envelope, as cosign attest made
// it (pkg/cosign/verify.go VerifyRFC3161Timestamp: an attestation has no
// base64 signature, so its payload is used). It returns cosign's output,
// and an error holding it when cosign refuses.
func CosignVerifyAttestationKeyless(t testing.TB, c CosignKeylessCheck, predicateType, image string) (string, error) {
	t.Helper()
	f := KeylessTrustFiles(t, c.TrustedRoot)
	args := append(append([]string{"verify-attestation", "--type", predicateType}, c.common()...),
		"--certificate-chain", f.FulcioChain, "--timestamp-certificate-chain", f.TSAChain, image)
	var env []string
	if c.Log {
		env = append(env, "SIGSTORE_REKOR_PUBLIC_KEY="+f.RekorKey)
	}
	return runCosign(t, "", cosignEnv(t, env...), args...)
}

// TrustFiles are a trusted root's authorities as the PEM files cosign's
// older flags take.
type TrustFiles struct {
	// FulcioChain is the Fulcio CA's chain, intermediates first, then the
	// root (--certificate-chain).
	FulcioChain string
	// TSAChain is the TSA's chain: its leaf, intermediates, then the root
	// (--timestamp-certificate-chain).
	TSAChain string
	// RekorKey is the transparency log's public key, PKIX PEM
	// (SIGSTORE_REKOR_PUBLIC_KEY); empty when the root names no log.
	RekorKey string
}

// KeylessTrustFiles writes the one Fulcio CA, the one TSA and the
// transparency log (if any) of the trusted_root.json at path as PEM files
// in a temporary directory of the test. It fails the test unless the root
// has exactly one CA and one TSA, and at most one log.
func KeylessTrustFiles(t testing.TB, path string) TrustFiles {
	t.Helper()
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	cas, tsas, logs := tr.FulcioCertificateAuthorities(), tr.TimestampingAuthorities(), tr.RekorLogs()
	if len(cas) != 1 || len(tsas) != 1 || len(logs) > 1 {
		t.Fatalf("%s: %d certificate authorities, %d timestamp authorities, %d logs; want 1, 1, at most 1", path, len(cas), len(tsas), len(logs))
	}
	ca, ok := cas[0].(*root.FulcioCertificateAuthority)
	tsa, ok2 := tsas[0].(*root.SigstoreTimestampingAuthority)
	if !ok || !ok2 || ca.Root == nil || tsa.Root == nil || tsa.Leaf == nil {
		t.Fatalf("%s: the certificate authority or the timestamp authority has no chain", path)
	}
	dir := t.TempDir()
	var f TrustFiles
	f.FulcioChain = writePEM(t, dir, "fulcio-chain.pem", "CERTIFICATE", certsDER(append(slices.Clone(ca.Intermediates), ca.Root))...)
	f.TSAChain = writePEM(t, dir, "tsa-chain.pem", "CERTIFICATE", certsDER(append(append([]*x509.Certificate{tsa.Leaf}, tsa.Intermediates...), tsa.Root))...)
	for _, l := range logs {
		der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		f.RekorKey = writePEM(t, dir, "rekor.pub", "PUBLIC KEY", der)
	}
	return f
}

func certsDER(certs []*x509.Certificate) [][]byte {
	var out [][]byte
	for _, c := range certs {
		out = append(out, c.Raw)
	}
	return out
}

// writePEM writes blocks of type typ to dir/name and returns its path.
func writePEM(t testing.TB, dir, name, typ string, blocks ...[]byte) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// KeylessFor is the keyless setup for the local Sigstore env, signing as
// identity (an OIDC token env issues for it).
func KeylessFor(t testing.TB, env *sigstoretest.Env, identity string) CosignKeyless {
	t.Helper()
	return CosignKeyless{
		FulcioURL: env.FulcioURL, IssuerURL: env.IssuerURL, TSAURL: env.TSAURL,
		TrustedRoot: env.TrustedRootPath, Token: env.Token(t, identity),
	}
}
