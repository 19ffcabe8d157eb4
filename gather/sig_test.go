package gather

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/pin"

	"github.com/trustgate/trustgate/internal/testutil"
)

// A cosign signature in the .sig tag is gathered with its signed payload,
// and its bytes count toward the budget.
func TestImageEvidenceReadsSignatures(t *testing.T) {
	ctx := context.Background()
	ref, _ := testutil.Registry(t, false, nil, "ai/gateway:1.0")
	img, _, err := attest.ImageSubject(ctx, ref, pin.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	payload := []byte(`{"critical":{"identity":{"docker-reference":"` + img.Context().Name() + `"},"image":{"docker-manifest-digest":"` + img.DigestStr() + `"},"type":"cosign container image signature"},"optional":null}`)
	sig, _, err := k.SignData(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteSigTag(t, img, testutil.SigLayer{Payload: payload, Annotations: map[string]string{testutil.CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}})

	budget := MaxAttachedBytes
	ev, err := ImageEvidence(ctx, img, pin.Registry{}, &budget)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Source, attest.SourceSigTag+" "+img.Context().Name()+"@sha256:") || string(ev[0].Payload) != string(payload) || len(ev[0].Raw) == 0 {
		t.Fatalf("evidence %+v", ev)
	}
	if used := MaxAttachedBytes - budget; used != len(ev[0].Raw)+len(payload) {
		t.Fatalf("budget took %d bytes, want %d", used, len(ev[0].Raw)+len(payload))
	}
	small := len(payload)
	if _, err := ImageEvidence(ctx, img, pin.Registry{}, &small); err == nil || !strings.Contains(err.Error(), "size bound") {
		t.Fatalf("over budget: %v", err)
	}
}
