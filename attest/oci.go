package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/pin"
)

// OCI errors.
var (
	// ErrImage: the image reference does not parse or does not resolve.
	ErrImage = errors.New("image")
	// ErrRegistry: the registry refused or failed a request.
	ErrRegistry = errors.New("registry")
	// ErrAttachment: something stored beside an image is not a readable
	// attestation.
	ErrAttachment = errors.New("malformed attachment")
)

// Where an attachment lives, and the media and annotation names it uses.
const (
	// SourceReferrer: an OCI 1.1 referrer whose artifact type is
	// BundleMediaType and whose one layer is the bundle.
	SourceReferrer = "referrer"
	// SourceTag: a layer of the cosign tag sha256-<hex>.att, holding the
	// DSSE envelope, with the rest of the bundle in an annotation.
	SourceTag = "tag"

	emptyConfigMediaType = "application/vnd.oci.empty.v1+json"
	dsseMediaType        = "application/vnd.dsse.envelope.v1+json"

	annBundleContent       = "dev.sigstore.bundle.content"
	annBundlePredicateType = "dev.sigstore.bundle.predicateType"
	annCosignPredicateType = "predicateType"
	annCosignSignature     = "dev.cosignproject.cosign/signature"
	annCosignCertificate   = "dev.sigstore.cosign/certificate"
	annVerificationMat     = "dev.trustgate.verification-material"
)

// Limits on what is read from a registry.
const (
	// MaxBundleSize bounds one bundle (a large SBOM, base64 in DSSE).
	MaxBundleSize = 96 << 20
	// MaxAttachments bounds how many attachments one image may list.
	MaxAttachments  = 256
	maxReferrers    = 4 * MaxAttachments
	maxManifestSize = 4 << 20
)

// Registry is how trustgate reaches registries: pin.Registry, the one
// configuration for every registry call.
type Registry = pin.Registry

// ImageSubject resolves ref (a tag or digest) to the digest of the manifest
// or index the registry serves for it now, and names it by repository as
// cosign does. A tag is read once: sign the returned digest, not the tag.
func ImageSubject(ctx context.Context, ref string, reg Registry) (name.Digest, Subject, error) {
	r, _, d, err := reg.Reference(ctx, ref)
	if err != nil {
		return name.Digest{}, Subject{}, fmt.Errorf("%w: %q: %w", ErrImage, safetext.Clip(ref, 80), err)
	}
	return d, Subject{Name: r.Context().Name(), Digest: map[string]string{"sha256": d.DigestStr()[len("sha256:"):]}}, nil
}

// Attachment is one attestation or signature stored beside an image.
// Nothing in it is verified: Kind, PredicateType and Signer are what the
// entry claims, for a person to read.
type Attachment struct {
	Source string // SourceReferrer, SourceTag or SourceSigTag
	Digest string // the referrer manifest's digest, or the tag layer's
	// Kind is KindAttestation or KindSignature (a .sig layer, or a
	// statement of type PredicateCosignSign).
	Kind string
	// Format is how the entry was stored: FormatBundle (a Sigstore
	// bundle) or FormatCosign (cosign's tag-scheme layer, with its
	// verification material in annotations).
	Format        string
	PredicateType string // "" for a .sig layer
	Signer        string
	// Bundle is the bundle as JSON; for an entry cosign wrote, the one
	// CosignSignature.BundleJSON builds from the layer and its annotations.
	Bundle []byte
	// Payload is, for a .sig layer (and only there, never nil), the signed
	// simple signing payload that names the image.
	Payload []byte
}

// Attach stores the bundle b beside the image img: as an OCI 1.1 referrer
// when the registry has the referrers API, else as a layer of the cosign tag
// sha256-<hex>.att. Storing the same bundle twice is a no-op. Two writers
// appending to the same cosign tag at once can lose one of the two (the tag
// scheme has no compare-and-swap); the referrers API has no such race.
func Attach(ctx context.Context, img name.Digest, b *bundle.Bundle, reg Registry) (Attachment, error) {
	ctx, cancel := reg.Context(ctx)
	defer cancel()
	opts := reg.Options(ctx)
	subject, err := remote.Head(img, opts...)
	if err != nil {
		return Attachment{}, fmt.Errorf("%w: %s: %w", ErrImage, img, err)
	}
	info, err := describe(b)
	if err != nil {
		return Attachment{}, err
	}
	_, err = referrers(ctx, img, reg)
	switch {
	case errors.Is(err, errNoReferrersAPI):
		return attachTag(img, info, opts)
	case err != nil:
		return Attachment{}, err
	}
	a, err := attachReferrer(img, subject, info, opts)
	if err != nil {
		return Attachment{}, err
	}
	return a, confirmReferrer(ctx, img, a.Digest, reg)
}

// confirmReferrer checks that the registry lists the referrer it accepted:
// some registries take a manifest with a subject and never index it, and an
// attestation nobody can find is worse than an error.
func confirmReferrer(ctx context.Context, img name.Digest, digest string, reg Registry) error {
	delay := 100 * time.Millisecond
	for try := 0; ; try++ {
		descs, err := referrers(ctx, img, reg)
		if err != nil {
			return fmt.Errorf("%w: confirming the referrer: %w", ErrRegistry, err)
		}
		for _, d := range descs {
			if d.Digest.String() == digest {
				return nil
			}
		}
		if try == 5 {
			return fmt.Errorf("%w: registry accepted referrer %s but does not list it among %s's referrers", ErrRegistry, digest, img)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// bundleInfo is what Attach and the listing need to know about a bundle.
type bundleInfo struct {
	raw           []byte // compact JSON
	predicateType string
	signer        string
	bundle        *bundle.Bundle
}

func describe(b *bundle.Bundle) (bundleInfo, error) {
	raw, err := compactProto(b.Bundle)
	if err != nil {
		return bundleInfo{}, err
	}
	info := bundleInfo{raw: raw, bundle: b}
	env := b.GetDsseEnvelope()
	if env == nil {
		return bundleInfo{}, fmt.Errorf("%w: bundle holds no DSSE envelope", ErrAttachment)
	}
	predType, err := statementPredicateType(env)
	if err != nil {
		return bundleInfo{}, fmt.Errorf("%w: %w", ErrAttachment, err)
	}
	info.predicateType = predType
	info.signer = Signer(b)
	return info, nil
}

// Signer names who the bundle says signed it, unverified: the certificate's
// identity and issuer, or the key's hint. For people to read, never to
// decide on.
func Signer(b *bundle.Bundle) string {
	vc, err := b.VerificationContent()
	if err != nil {
		return "unknown"
	}
	if c := vc.Certificate(); c != nil {
		return certSigner(c)
	}
	if pk := vc.PublicKey(); pk != nil {
		if pk.Hint() == "" {
			return "a key the bundle does not name"
		}
		return "key " + pk.Hint()
	}
	return "unknown"
}

// rawManifest is a manifest pushed as the exact bytes built here.
type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.data, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

func attachReferrer(img name.Digest, subject *v1.Descriptor, info bundleInfo, opts []remote.Option) (Attachment, error) {
	ann := map[string]string{
		annBundleContent:       "dsse-envelope",
		annBundlePredicateType: info.predicateType,
	}
	h, err := pushReferrer(img, subject, info.raw, ann, opts)
	if err != nil {
		return Attachment{}, err
	}
	return Attachment{Source: SourceReferrer, Digest: h.String(), Kind: kindOf(info.predicateType), Format: FormatBundle, PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}, nil
}

// pushReferrer pushes an OCI 1.1 artifact manifest of type BundleMediaType
// whose one layer is raw and whose subject is the image, and returns the
// manifest's digest.
func pushReferrer(img name.Digest, subject *v1.Descriptor, raw []byte, ann map[string]string, opts []remote.Option) (v1.Hash, error) {
	repo := img.Context()
	cfg := static.NewLayer([]byte("{}"), emptyConfigMediaType)
	layer := static.NewLayer(raw, BundleMediaType)
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return v1.Hash{}, fmt.Errorf("%w: uploading to %s: %w", ErrRegistry, repo, err)
		}
		d, err := partial.Descriptor(l)
		if err != nil {
			return v1.Hash{}, err
		}
		descs = append(descs, *d)
	}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	mf := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleMediaType,
		Config:        descs[0],
		Layers:        descs[1:],
		Subject:       &sub,
		Annotations:   ann,
	}
	data, err := json.Marshal(mf)
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Put(repo.Digest(h.String()), rawManifest{data, types.OCIManifestSchema1}, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("%w: pushing referrer to %s: %w", ErrRegistry, repo, err)
	}
	return h, nil
}

// CosignTag is the tag the cosign scheme keeps img's attestations under.
func CosignTag(img name.Digest) name.Tag {
	return img.Context().Tag(strings.Replace(img.DigestStr(), ":", "-", 1) + ".att")
}

func attachTag(img name.Digest, info bundleInfo, opts []remote.Option) (Attachment, error) {
	tag := CosignTag(img)
	base, err := existingTagImage(tag, opts)
	if err != nil {
		return Attachment{}, err
	}
	env, err := compactProto(info.bundle.GetDsseEnvelope())
	if err != nil {
		return Attachment{}, err
	}
	vm, err := compactProto(info.bundle.GetVerificationMaterial())
	if err != nil {
		return Attachment{}, err
	}
	layer := static.NewLayer(env, dsseMediaType)
	ld, err := layer.Digest()
	if err != nil {
		return Attachment{}, err
	}
	att := Attachment{Source: SourceTag, Digest: ld.String(), Kind: kindOf(info.predicateType), Format: FormatBundle, PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}
	mf, err := base.Manifest()
	if err != nil {
		return Attachment{}, fmt.Errorf("%w: %s: %w", ErrRegistry, tag, err)
	}
	for _, l := range mf.Layers {
		if l.Digest == ld && l.Annotations[annVerificationMat] == string(vm) {
			return att, nil // already there
		}
	}
	ann := map[string]string{
		annCosignPredicateType: info.predicateType,
		annCosignSignature:     "",
		annVerificationMat:     string(vm),
	}
	if c := info.bundle.GetVerificationMaterial().GetCertificate(); c != nil {
		ann[annCosignCertificate] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.GetRawBytes()}))
	}
	next, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: dsseMediaType, Annotations: ann})
	if err != nil {
		return Attachment{}, err
	}
	if err := remote.Write(tag, next, opts...); err != nil {
		return Attachment{}, fmt.Errorf("%w: pushing %s: %w", ErrRegistry, tag, err)
	}
	return att, nil
}

// existingTagImage returns the image at the cosign tag, or an empty OCI
// image when the tag does not exist yet.
func existingTagImage(tag name.Tag, opts []remote.Option) (v1.Image, error) {
	img, err := tagImage(tag, opts)
	if err != nil || img != nil {
		return img, err
	}
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), nil
}

// tagImage reads the image at tag, or nil if the tag does not exist. Its
// manifest must be an image manifest of at most maxManifestSize bytes.
func tagImage(tag name.Tag, opts []remote.Option) (v1.Image, error) {
	d, err := headTag(tag, "an image manifest", types.MediaType.IsImage, opts)
	if err != nil || d == nil {
		return nil, err
	}
	img, err := remote.Image(d, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrRegistry, tag, err)
	}
	return img, nil
}

// headTag resolves tag to the digest it names now, or nil if it does not
// exist; what it names must be of the kind ok accepts (image manifest,
// index) and at most maxManifestSize bytes, checked before anything is
// fetched.
func headTag(tag name.Tag, what string, ok func(types.MediaType) bool, opts []remote.Option) (*name.Digest, error) {
	desc, err := remote.Head(tag, opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrRegistry, tag, err)
	}
	if desc.Size > maxManifestSize || !ok(desc.MediaType) {
		return nil, fmt.Errorf("%w: %s is not %s of at most %d bytes", ErrAttachment, tag, what, maxManifestSize)
	}
	d := tag.Context().Digest(desc.Digest.String())
	return &d, nil
}

// compactProto is protojson without its deliberately unstable whitespace.
func compactProto(m proto.Message) ([]byte, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseBundleProto wraps a bundle message from sigstore-go's signer,
// checking it as ParseBundle does.
func ParseBundleProto(pb *protobundle.Bundle) (*bundle.Bundle, error) {
	return bundle.NewBundle(pb)
}

// ParseBundle reads a Sigstore bundle's JSON (at most MaxBundleSize bytes).
func ParseBundle(raw []byte) (*bundle.Bundle, error) {
	info, err := parseBundle(raw)
	return info.bundle, err
}

func parseBundle(raw []byte) (bundleInfo, error) {
	b, err := ParseBundleJSON(raw)
	if err != nil {
		return bundleInfo{}, err
	}
	return describe(b)
}
