package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SimpleSigningMediaType is the media type of the layers of cosign's .sig
// tag.
const SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"

// CosignSignatureAnnotation holds a .sig layer's base64 signature.
const CosignSignatureAnnotation = "dev.cosignproject.cosign/signature"

// SigLayer is one layer of a cosign .sig tag: the signed payload, and the
// annotations (the signature, and keyless the certificate and the rest).
type SigLayer struct {
	Payload     []byte
	Annotations map[string]string
}

// SigTag is the tag cosign keeps img's signatures under.
func SigTag(t testing.TB, img name.Digest) name.Tag {
	t.Helper()
	return img.Context().Tag(strings.Replace(img.DigestStr(), ":", "-", 1) + ".sig")
}

// ReadSigTag reads the layers of img's .sig tag, as cosign sign wrote them.
func ReadSigTag(t testing.TB, img name.Digest) []SigLayer {
	t.Helper()
	return ReadTag(t, SigTag(t, img))
}

// AttTag is the tag cosign keeps img's attestations under.
func AttTag(t testing.TB, img name.Digest) name.Tag {
	t.Helper()
	return img.Context().Tag(strings.Replace(img.DigestStr(), ":", "-", 1) + ".att")
}

// ReadTag reads the layers of an image (a cosign .sig or .att tag) with
// their annotations.
func ReadTag(t testing.TB, tag name.Tag) []SigLayer {
	t.Helper()
	m, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := m.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []SigLayer
	for _, d := range mf.Layers {
		l, err := m.LayerByDigest(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, SigLayer{Payload: data, Annotations: maps.Clone(d.Annotations)})
	}
	return out
}

// WriteSigTag replaces img's .sig tag with an image whose layers are
// layers, of the simple signing media type, as cosign writes it.
func WriteSigTag(t testing.TB, img name.Digest, layers ...SigLayer) {
	t.Helper()
	WriteTag(t, SigTag(t, img), SimpleSigningMediaType, layers...)
}

// DSSEMediaType is the media type of the layers of cosign's .att tag.
const DSSEMediaType = "application/vnd.dsse.envelope.v1+json"

// WriteTag replaces tag with an image whose layers are layers, each of
// mediaType, as cosign writes its .sig and .att tags.
func WriteTag(t testing.TB, tag name.Tag, mediaType types.MediaType, layers ...SigLayer) {
	t.Helper()
	var adds []mutate.Addendum
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:       static.NewLayer(l.Payload, mediaType),
			MediaType:   mediaType,
			Annotations: l.Annotations,
		})
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	m, err := mutate.Append(base, adds...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, m); err != nil {
		t.Fatal(err)
	}
}

// CertificatePEM is a self-signed certificate for the e-mail address
// email, valid for an hour around now: what a keyless .sig layer carries
// in its certificate annotation, for a test that lists it.
func CertificatePEM(t testing.TB, email string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		EmailAddresses: []string{email},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
