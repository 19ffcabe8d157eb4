package admission_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/interop"
	"github.com/trustgate/trustgate/internal/testutil"
)

// cosignKey writes k as cosign's encrypted key file and returns its path.
func cosignKey(t *testing.T, k *attest.Key) string {
	t.Helper()
	data, err := k.MarshalPrivate([]byte(cosignPassword))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const cosignPassword = "cosign test password"

// An image signed with cosign sign --key (the .sig tag, no attestation)
// by the key the policy trusts is admitted: the signature counts toward
// the image's signers rule. Signed by another key, or carrying the
// signature of another image, it is denied.
func TestCheckerCosignSignature(t *testing.T) {
	interop.Cosign(t)
	e := newEnv(t, admission.Config{})
	k := e.kit
	signed := k.Push("trustgate/gateway:cosign")
	interop.CosignSign(t, cosignKey(t, k.Release), cosignPassword, signed.String())
	e.decide(t, pod(container(signed.String())), true)

	wrong := k.Push("trustgate/gateway:cosign-other")
	interop.CosignSign(t, cosignKey(t, k.Other), cosignPassword, wrong.String())
	e.decide(t, pod(container(wrong.String())), false, "components[0].signers", "signature does not verify")

	// The .sig tag of another image, copied beside this one: its payload
	// names the other digest.
	copied := k.Push("trustgate/gateway:cosign-copied")
	testutil.WriteSigTag(t, copied, testutil.ReadSigTag(t, signed)...)
	e.decide(t, pod(container(copied.String())), false, "components[0].signers", "names "+signed.DigestStr())
}
