package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustgate/trustgate/internal/testutil"
)

// sigLayer is one layer of a .sig tag: its bytes, media type and
// annotations.
type sigLayer struct {
	payload []byte
	mt      types.MediaType
	ann     map[string]string
}

// pushSigTag writes img's .sig tag as cosign does: an OCI image whose
// layers are the signatures.
func pushSigTag(t *testing.T, img name.Digest, layers ...sigLayer) {
	t.Helper()
	var adds []mutate.Addendum
	for _, l := range layers {
		mt := l.mt
		if mt == "" {
			mt = simpleSigningMediaType
		}
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(l.payload, mt), MediaType: mt, Annotations: l.ann})
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	m, err := mutate.Append(base, adds...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(SignatureTag(img), m); err != nil {
		t.Fatal(err)
	}
}

// signedLayer is a .sig layer over payload signed with k.
func signedLayer(t *testing.T, k *Key, payload []byte) sigLayer {
	t.Helper()
	sig, _, err := k.SignData(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	return sigLayer{payload: payload, ann: map[string]string{annCosignSignature: base64.StdEncoding.EncodeToString(sig)}}
}

func simplePayload(img name.Digest) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"` + img.Context().Name() + `"},"image":{"docker-manifest-digest":"` + img.DigestStr() + `"},"type":"cosign container image signature"},"optional":null}`)
}

func TestListSignatures(t *testing.T) {
	ctx := context.Background()
	img, _, err := ImageSubject(ctx, testRegistry(t, true), Registry{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := GenerateKey(ECDSAP256)
	keyless := signedLayer(t, k, simplePayload(img))
	keyless.ann[annCosignCertificate] = testutil.CertificatePEM(t, "me@example.com")
	pushSigTag(t, img,
		signedLayer(t, k, simplePayload(img)),
		sigLayer{payload: []byte("not a signature"), mt: "application/octet-stream"}, // another tool's: left out
		keyless)
	// A statement of cosign's signing type (cosign sign
	// --new-bundle-format) is a signature too.
	st, err := NewStatement(PredicateCosignSign, []byte(`{}`), Subject{Name: img.Context().Name(), Digest: map[string]string{"sha256": strings.TrimPrefix(img.DigestStr(), "sha256:")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Sign(ctx, st, k, Services{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(ctx, img, b, Registry{}); err != nil {
		t.Fatal(err)
	}

	as, err := Attachments(ctx, img, Registry{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 {
		t.Fatalf("listed %d, want 3: %+v", len(as), as)
	}
	ref, key, cert := as[0], as[1], as[2]
	if ref.Source != SourceReferrer || ref.Kind != KindSignature || ref.PredicateType != PredicateCosignSign || ref.Payload != nil {
		t.Fatalf("referrer: %+v", ref)
	}
	if key.Source != SourceSigTag || key.Kind != KindSignature || key.PredicateType != "" || !bytes.Equal(key.Payload, simplePayload(img)) || !strings.HasPrefix(key.Digest, "sha256:") {
		t.Fatalf(".sig layer: %+v", key)
	}
	// What is handed on is a message signature over the payload's SHA-256,
	// with a key the bundle does not name.
	sb, err := ParseBundleJSON(key.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(key.Payload)
	if ms := sb.GetMessageSignature(); ms == nil || !bytes.Equal(ms.GetMessageDigest().GetDigest(), sum[:]) || Signer(sb) != "a key the bundle does not name" {
		t.Fatalf("bundle %s", key.Bundle)
	}
	if key.Format != FormatCosign || ref.Format != FormatBundle {
		t.Fatalf("formats %q and %q", key.Format, ref.Format)
	}
	// A keyless layer becomes a bundle with its certificate (and no log
	// entry, as it has no Rekor bundle annotation).
	cb, err := ParseBundleJSON(cert.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Kind != KindSignature || !strings.Contains(cert.Signer, "me@example.com") || cert.Payload == nil ||
		!strings.Contains(Signer(cb), "me@example.com") || len(cb.GetVerificationMaterial().GetTlogEntries()) != 0 {
		t.Fatalf("keyless .sig layer: %+v", cert)
	}
}

func TestListSignaturesRejectsMalformed(t *testing.T) {
	ctx := context.Background()
	k, _ := GenerateKey(ECDSAP256)
	for _, c := range []struct {
		name  string
		layer func(img name.Digest) sigLayer
	}{
		{"no signature annotation", func(img name.Digest) sigLayer { return sigLayer{payload: simplePayload(img)} }},
		{"signature not base64", func(img name.Digest) sigLayer {
			return sigLayer{payload: simplePayload(img), ann: map[string]string{annCosignSignature: "not base64!"}}
		}},
		{"signature too long", func(img name.Digest) sigLayer {
			return sigLayer{payload: simplePayload(img), ann: map[string]string{annCosignSignature: strings.Repeat("A", maxSignatureText+4)}}
		}},
		{"certificate that does not parse", func(img name.Digest) sigLayer {
			l := signedLayer(t, k, simplePayload(img))
			l.ann[annCosignCertificate] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
			return l
		}},
		{"Rekor bundle that does not parse", func(img name.Digest) sigLayer {
			l := signedLayer(t, k, simplePayload(img))
			l.ann["dev.sigstore.cosign/bundle"] = `{"SignedEntryTimestamp":"AAAA","Payload":{}}`
			return l
		}},
		{"Rekor bundle with an unknown field", func(img name.Digest) sigLayer {
			l := signedLayer(t, k, simplePayload(img))
			l.ann["dev.sigstore.cosign/bundle"] = `{"SignedEntryTimestamp":"AAAA","Payload":{},"extra":1}`
			return l
		}},
		{"chain without a certificate", func(img name.Digest) sigLayer {
			l := signedLayer(t, k, simplePayload(img))
			l.ann["dev.sigstore.cosign/chain"] = testutil.CertificatePEM(t, "ca@example.com")
			return l
		}},
		{"timestamp that is not cosign's JSON", func(img name.Digest) sigLayer {
			l := signedLayer(t, k, simplePayload(img))
			l.ann["dev.sigstore.cosign/rfc3161timestamp"] = `{"SignedRFC3161Timestamp":"AAAA","x":1}`
			return l
		}},
		{"empty payload", func(img name.Digest) sigLayer { return signedLayer(t, k, []byte{}) }},
		{"payload too large", func(img name.Digest) sigLayer {
			return signedLayer(t, k, append(simplePayload(img), bytes.Repeat([]byte(" "), MaxSignaturePayload)...))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, _, err := ImageSubject(ctx, testRegistry(t, false), Registry{})
			if err != nil {
				t.Fatal(err)
			}
			pushSigTag(t, img, c.layer(img))
			if _, err := Attachments(ctx, img, Registry{}); !errors.Is(err, ErrAttachment) {
				t.Fatalf("got %v, want ErrAttachment", err)
			}
		})
	}
}

// More layers in the .sig tag than MaxAttachments fail the listing before
// any is read.
func TestListSignaturesBounded(t *testing.T) {
	ctx := context.Background()
	img, _, err := ImageSubject(ctx, testRegistry(t, false), Registry{})
	if err != nil {
		t.Fatal(err)
	}
	var layers []sigLayer
	for i := 0; i <= MaxAttachments; i++ {
		layers = append(layers, sigLayer{payload: []byte{byte(i), byte(i >> 8)}, ann: map[string]string{annCosignSignature: "AAAA"}})
	}
	pushSigTag(t, img, layers...)
	if _, err := Attachments(ctx, img, Registry{}); !errors.Is(err, ErrAttachment) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("got %v, want ErrAttachment for too many", err)
	}
}

// A .sig tag that names an index, or a manifest too large, fails the
// listing.
func TestListSignaturesTagNotAnImage(t *testing.T) {
	ctx := context.Background()
	img, _, err := ImageSubject(ctx, testRegistry(t, false), Registry{})
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: empty.Image, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1}})
	if err := remote.WriteIndex(SignatureTag(img), idx); err != nil {
		t.Fatal(err)
	}
	if _, err := Attachments(ctx, img, Registry{}); !errors.Is(err, ErrAttachment) {
		t.Fatalf("got %v, want ErrAttachment", err)
	}
}

// FuzzSigEntry: a .sig layer's payload and annotations come from a
// registry. Listing any never panics; what is listed with a bundle holds
// a message signature over exactly the payload.
func FuzzSigEntry(f *testing.F) {
	f.Add([]byte(`{"critical":{}}`), "MEUCIQ==", "")
	f.Add([]byte("x"), "", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	f.Add([]byte{}, "!!", "not pem")
	f.Fuzz(func(t *testing.T, payload []byte, sig, cert string) {
		a, err := sigEntry(payload, map[string]string{annCosignSignature: sig, annCosignCertificate: cert})
		if err != nil {
			return
		}
		if a.Kind != KindSignature || !bytes.Equal(a.Payload, payload) {
			t.Fatalf("listed %+v", a)
		}
		if a.Bundle == nil {
			if cert == "" {
				t.Fatal("a key signature listed without a bundle")
			}
			return
		}
		b, err := ParseBundleJSON(a.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(payload)
		if !bytes.Equal(b.GetMessageSignature().GetMessageDigest().GetDigest(), sum[:]) {
			t.Fatal("the bundle is over another payload")
		}
	})
}
