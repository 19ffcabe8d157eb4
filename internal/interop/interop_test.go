package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

const (
	cycloneDXPredicateType = "https://cyclonedx.org/bom"
	inTotoPayloadType      = "application/vnd.in-toto+json"
)

// signed is one bundle made by sigstore-go, with the files to check it.
type signed struct {
	bundle, pub, artifact string
}

// writeFile writes data to name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newKeypair makes an ephemeral key pair of the given algorithm and writes
// its public key as PEM.
func newKeypair(t *testing.T, dir, name string, alg protocommon.PublicKeyDetails) (*sign.EphemeralKeypair, string) {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(&sign.EphemeralKeypairOptions{
		Hint:      []byte("trustgate-interop-" + name),
		Algorithm: alg,
	})
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	return kp, writeFile(t, dir, name+".pub", []byte(pubPEM))
}

// signDSSE signs payload in a DSSE envelope with kp and returns the bundle
// as JSON.
func signDSSE(t *testing.T, kp sign.Keypair, payload []byte, payloadType string) []byte {
	t.Helper()
	pb, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: payloadType}, kp, sign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signStatement signs, with kp, an in-toto Statement v1 whose subject is
// artifact's sha256 and whose predicate is a small CycloneDX BOM, and writes
// the v0.3 bundle as JSON.
func signStatement(t *testing.T, dir, name string, kp sign.Keypair, artifact string) string {
	t.Helper()
	data, err := os.ReadFile(artifact)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	statement := map[string]any{
		"_type": "https://in-toto.io/Statement/v1",
		"subject": []any{map[string]any{
			"name":   filepath.Base(artifact),
			"digest": map[string]string{"sha256": hex.EncodeToString(sum[:])},
		}},
		"predicateType": cycloneDXPredicateType,
		"predicate": map[string]any{
			"bomFormat":   "CycloneDX",
			"specVersion": "1.6",
			"version":     1,
			"components": []any{map[string]any{
				"type": "library", "name": "example", "version": "1.0.0",
				"purl": "pkg:golang/example.com/example@v1.0.0",
			}},
		},
	}
	statementJSON, err := json.Marshal(statement)
	if err != nil {
		t.Fatal(err)
	}
	out := signDSSE(t, kp, statementJSON, inTotoPayloadType)
	var check struct {
		MediaType            string `json:"mediaType"`
		VerificationMaterial struct {
			PublicKey struct {
				Hint string `json:"hint"`
			} `json:"publicKey"`
		} `json:"verificationMaterial"`
		DSSEEnvelope struct {
			PayloadType string `json:"payloadType"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(out, &check); err != nil {
		t.Fatal(err)
	}
	if check.MediaType != "application/vnd.dev.sigstore.bundle.v0.3+json" ||
		check.VerificationMaterial.PublicKey.Hint == "" ||
		check.DSSEEnvelope.PayloadType != inTotoPayloadType {
		t.Fatalf("sigstore-go wrote an unexpected bundle:\n%s", out)
	}
	return writeFile(t, dir, name+".sigstore.json", out)
}

// fixture makes a P-256 key, an artifact and its bundle, plus another file
// and another key for the negative checks.
func fixture(t *testing.T, alg protocommon.PublicKeyDetails) (good signed, otherFile, otherPub string) {
	t.Helper()
	dir := t.TempDir()
	artifact := writeFile(t, dir, "artifact.tar.gz", []byte("trustgate interop artifact\n"))
	otherFile = writeFile(t, dir, "other.tar.gz", []byte("a different artifact\n"))
	kp, pub := newKeypair(t, dir, "signer", alg)
	_, otherPub = newKeypair(t, dir, "other", alg)
	return signed{bundle: signStatement(t, dir, "artifact", kp, artifact), pub: pub, artifact: artifact}, otherFile, otherPub
}

// wantRejected fails unless err is a rejection whose message has want.
func wantRejected(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted, want rejected")
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("rejected, but not with %q:\n%v", want, err)
	}
	t.Logf("rejected as expected: %v", err)
}

func TestCosign(t *testing.T) {
	Cosign(t) // skip (outside CI) before signing anything if there is no cosign
	for _, tc := range []struct {
		name string
		alg  protocommon.PublicKeyDetails
	}{
		{"ecdsa-p256", protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256},
		{"ed25519", protocommon.PublicKeyDetails_PKIX_ED25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, otherFile, otherPub := fixture(t, tc.alg)
			t.Run("accepts", func(t *testing.T) {
				if err := CosignVerifyBlobAttestation(t, good.bundle, good.pub, "cyclonedx", good.artifact); err != nil {
					t.Fatal(err)
				}
				if err := CosignVerifyBlobAttestation(t, good.bundle, good.pub, cycloneDXPredicateType, good.artifact); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("rejects another file", func(t *testing.T) {
				wantRejected(t, CosignVerifyBlobAttestation(t, good.bundle, good.pub, "cyclonedx", otherFile), "artifact digest does not match any digest in statement")
			})
			t.Run("rejects another key", func(t *testing.T) {
				wantRejected(t, CosignVerifyBlobAttestation(t, good.bundle, otherPub, "cyclonedx", good.artifact), "could not verify envelope")
			})
			t.Run("rejects another predicate type", func(t *testing.T) {
				wantRejected(t, CosignVerifyBlobAttestation(t, good.bundle, good.pub, "spdxjson", good.artifact), "invalid predicate type")
			})
		})
	}
}

func TestCosignGenerateKeyPair(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath := CosignGenerateKeyPair(t, dir, "correct horse battery staple")
	for path, types := range map[string][]string{
		// cosign v2.6.5 writes the SIGSTORE type; older ones the COSIGN one.
		keyPath: {"ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"},
		pubPath: {"PUBLIC KEY"},
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		block, rest := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s is not PEM:\n%s", path, data)
		}
		if len(strings.TrimSpace(string(rest))) != 0 {
			t.Errorf("%s has more than one PEM block", path)
		}
		ok := false
		for _, ty := range types {
			ok = ok || block.Type == ty
		}
		if !ok {
			t.Errorf("%s is a %q PEM block, want one of %q", path, block.Type, types)
		}
		t.Logf("%s: %s", filepath.Base(path), block.Type)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("private key %s: mode %v, err %v; want no group or other access", keyPath, fi.Mode(), err)
	}
}

func TestSigstoreJS(t *testing.T) {
	SigstoreJS(t) // skip (outside CI) before signing anything if there is no sigstore-js
	for _, tc := range []struct {
		name string
		alg  protocommon.PublicKeyDetails
	}{
		{"ecdsa-p256", protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256},
		{"ed25519", protocommon.PublicKeyDetails_PKIX_ED25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, otherFile, otherPub := fixture(t, tc.alg)
			t.Run("accepts", func(t *testing.T) {
				if err := SigstoreJSVerify(t, good.bundle, good.pub, good.artifact, cycloneDXPredicateType); err != nil {
					t.Fatal(err)
				}
				if err := SigstoreJSVerify(t, good.bundle, good.pub, good.artifact, ""); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("rejects another file", func(t *testing.T) {
				wantRejected(t, SigstoreJSVerify(t, good.bundle, good.pub, otherFile, cycloneDXPredicateType), "no subject of the statement has sha256")
			})
			t.Run("rejects another key", func(t *testing.T) {
				wantRejected(t, SigstoreJSVerify(t, good.bundle, otherPub, good.artifact, cycloneDXPredicateType), "SIGNATURE_ERROR")
			})
			t.Run("rejects another predicate type", func(t *testing.T) {
				wantRejected(t, SigstoreJSVerify(t, good.bundle, good.pub, good.artifact, "https://spdx.dev/Document"), "predicateType")
			})
		})
	}
}

// TestSigstoreJSRejectsTampering checks the binding verify.mjs adds to
// sigstore-js: a bundle whose signature is good but whose statement is not
// about the artifact, or is no in-toto statement, is rejected.
func TestSigstoreJSRejectsTampering(t *testing.T) {
	SigstoreJS(t)
	dir := t.TempDir()
	artifact := writeFile(t, dir, "artifact", []byte("artifact\n"))
	kp, pub := newKeypair(t, dir, "signer", protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256)
	sum := sha256.Sum256([]byte("artifact\n"))
	digest := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name, payloadType, payload, want string
	}{
		{"other payload type", "application/json",
			`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + digest + `"}}],"predicateType":"x"}`,
			"DSSE payload type"},
		{"old statement type", inTotoPayloadType,
			`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"digest":{"sha256":"` + digest + `"}}],"predicateType":"x"}`,
			"statement _type"},
		{"no subject", inTotoPayloadType,
			`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}`,
			"no subject"},
		{"sha512 only", inTotoPayloadType,
			`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha512":"` + digest + `"}}],"predicateType":"x"}`,
			"no subject of the statement has sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := signDSSE(t, kp, []byte(tc.payload), tc.payloadType)
			bundlePath := writeFile(t, t.TempDir(), "b.sigstore.json", out)
			wantRejected(t, SigstoreJSVerify(t, bundlePath, pub, artifact, ""), tc.want)
		})
	}
}

// TestSigstoreJSExitStatus checks verify.mjs's exit statuses, which
// SigstoreJSVerify relies on to tell a rejection (1) from a check that did
// not run (2).
func TestSigstoreJSExitStatus(t *testing.T) {
	script := SigstoreJS(t)
	dir := t.TempDir()
	good, _, _ := fixture(t, protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256)
	notJSON := writeFile(t, dir, "not.json", []byte("not json"))
	notPEM := writeFile(t, dir, "not.pem", []byte("not a key"))
	notBundle := writeFile(t, dir, "not-bundle.json", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"--bundle", good.bundle, "--key", good.pub, "--artifact", good.artifact}, 0},
		{"ok with =", []string{"--bundle=" + good.bundle, "--key=" + good.pub, "--artifact=" + good.artifact, "--type=" + cycloneDXPredicateType}, 0},
		{"no args", nil, 2},
		{"no artifact", []string{"--bundle", good.bundle, "--key", good.pub}, 2},
		{"unknown flag", []string{"--bundle", good.bundle, "--key", good.pub, "--artifact", good.artifact, "--offline"}, 2},
		{"flag twice", []string{"--bundle", good.bundle, "--bundle", good.bundle, "--key", good.pub, "--artifact", good.artifact}, 2},
		{"missing file", []string{"--bundle", filepath.Join(dir, "absent"), "--key", good.pub, "--artifact", good.artifact}, 2},
		{"key not PEM", []string{"--bundle", good.bundle, "--key", notPEM, "--artifact", good.artifact}, 2},
		{"bundle not JSON", []string{"--bundle", notJSON, "--key", good.pub, "--artifact", good.artifact}, 1},
		{"bundle not a bundle", []string{"--bundle", notBundle, "--key", good.pub, "--artifact", good.artifact}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("node", append([]string{script}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			got := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				got = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("exit status %d, want %d\n%s", got, tc.want, out)
			}
		})
	}
}
