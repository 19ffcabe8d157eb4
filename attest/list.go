package attest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"google.golang.org/protobuf/encoding/protojson"
)

// Attachments lists the attestations and signatures stored beside img:
// its referrers (through the referrers API, or, where the registry has
// none, the OCI referrers tag sha256-<hex>), then the layers of the cosign
// tag sha256-<hex>.att, then cosign's plain signatures, the layers of the
// tag sha256-<hex>.sig. Anything that says it is a Sigstore bundle (any
// bundle version) or a cosign signature but cannot be read fails the
// listing with ErrAttachment: a listing that skipped it would hide it.
// Referrers of other kinds (another tool's signature or SBOM) are left
// out.
func Attachments(ctx context.Context, img name.Digest, reg Registry) ([]Attachment, error) {
	ctx, cancel := reg.Context(ctx)
	defer cancel()
	opts := reg.Options(ctx)
	descs, err := referrers(ctx, img, reg)
	if errors.Is(err, errNoReferrersAPI) {
		descs, err = referrersTagIndex(img, opts)
	}
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for _, d := range descs {
		// Some registries (go-containerregistry's own among them) report
		// the config's media type instead of the manifest's artifactType;
		// for those, the manifest itself says what it is.
		if !isBundleType(d.ArtifactType) && d.ArtifactType != emptyConfigMediaType && d.ArtifactType != "" {
			continue
		}
		a, ok, err := readReferrer(img.Context().Digest(d.Digest.String()), d, opts)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
		if len(out) > MaxAttachments {
			return nil, fmt.Errorf("%w: more than %d attestations on %s", ErrAttachment, MaxAttachments, img)
		}
	}
	tags, err := tagAttachments(img, opts)
	if err != nil {
		return nil, err
	}
	sigs, err := sigTagAttachments(img, opts)
	if err != nil {
		return nil, err
	}
	return append(append(out, tags...), sigs...), nil
}

// isBundleType reports whether a media type names a Sigstore bundle, in
// any of its spellings and versions.
func isBundleType(t string) bool {
	return strings.HasPrefix(t, "application/vnd.dev.sigstore.bundle")
}

// referrersTagIndex reads the OCI referrers tag schema's index, which
// clients keep for registries without the referrers API.
func referrersTagIndex(img name.Digest, opts []remote.Option) ([]v1.Descriptor, error) {
	tag := img.Context().Tag(strings.Replace(img.DigestStr(), ":", "-", 1))
	d, err := headTag(tag, "an image index", types.MediaType.IsIndex, opts)
	if err != nil || d == nil {
		return nil, err
	}
	idx, err := remote.Index(d, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrRegistry, tag, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrAttachment, tag, err)
	}
	if len(im.Manifests) > maxReferrers {
		return nil, fmt.Errorf("%w: %s lists more than %d referrers", ErrAttachment, tag, maxReferrers)
	}
	return im.Manifests, nil
}

// readReferrer reads one referrer; ok is false when it is not a bundle.
func readReferrer(ref name.Digest, d v1.Descriptor, opts []remote.Option) (a Attachment, ok bool, err error) {
	if d.Size > maxManifestSize || !d.MediaType.IsImage() {
		return a, false, fmt.Errorf("%w: referrer %s is not an image manifest of at most %d bytes", ErrAttachment, ref.DigestStr(), maxManifestSize)
	}
	m, err := remote.Image(ref, opts...)
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrRegistry, ref, err)
	}
	mf, err := m.Manifest()
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrAttachment, ref, err)
	}
	kind := mf.ArtifactType
	if kind == "" {
		kind = string(mf.Config.MediaType)
	}
	if !isBundleType(kind) {
		if isBundleType(d.ArtifactType) {
			return a, false, fmt.Errorf("%w: referrer %s is listed as a bundle but its manifest says %s", ErrAttachment, ref.DigestStr(), clean(kind))
		}
		return a, false, nil
	}
	if len(mf.Layers) != 1 || !isBundleType(string(mf.Layers[0].MediaType)) {
		return a, false, fmt.Errorf("%w: %s: want one layer holding the bundle", ErrAttachment, ref)
	}
	raw, err := readBlob(m, mf.Layers[0])
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrAttachment, ref, err)
	}
	info, err := parseBundle(raw)
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrAttachment, ref, err)
	}
	return Attachment{Source: SourceReferrer, Digest: ref.DigestStr(), Kind: kindOf(info.predicateType), Format: FormatBundle, PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}, true, nil
}

// tagAttachments reads the layers of img's cosign tag .att: at most
// MaxAttachments, each at most MaxBundleSize bytes. Layers of other media
// types are left out; a DSSE layer that cannot be read fails the listing
// (ErrAttachment).
func tagAttachments(img name.Digest, opts []remote.Option) ([]Attachment, error) {
	return cosignTagLayers(CosignTag(img), dsseMediaType, MaxBundleSize, opts, tagEntry)
}

// cosignTagLayers reads the layers of one of cosign's tags (.att, .sig)
// that have mediaType, at most MaxAttachments of them and each at most
// maxSize bytes, and lists each with entry. No tag is no entry; a tag that
// is no image, or a layer that cannot be read, fails the listing.
func cosignTagLayers(tag name.Tag, mediaType types.MediaType, maxSize int64, opts []remote.Option, entry func(data []byte, ann map[string]string) (Attachment, error)) ([]Attachment, error) {
	m, err := tagImage(tag, opts)
	if err != nil || m == nil {
		return nil, err
	}
	mf, err := m.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrAttachment, tag, err)
	}
	if len(mf.Layers) > MaxAttachments {
		return nil, fmt.Errorf("%w: more than %d entries in %s", ErrAttachment, MaxAttachments, tag)
	}
	var out []Attachment
	for _, l := range mf.Layers {
		if l.MediaType != mediaType {
			continue
		}
		if l.Size > maxSize {
			return nil, fmt.Errorf("%w: %s layer %s: %d bytes (limit %d)", ErrAttachment, tag, l.Digest, l.Size, maxSize)
		}
		data, err := readBlob(m, l)
		if err != nil {
			return nil, fmt.Errorf("%w: %s layer %s: %w", ErrAttachment, tag, l.Digest, err)
		}
		a, err := entry(data, l.Annotations)
		if err != nil {
			return nil, fmt.Errorf("%w: %s layer %s: %w", ErrAttachment, tag, l.Digest, err)
		}
		a.Digest = l.Digest.String()
		out = append(out, a)
	}
	return out, nil
}

// tagEntry rebuilds the bundle from a tag layer (the envelope) and its
// annotations: trustgate's verification material annotation (the bundle
// attest wrote), or, for a layer cosign wrote, cosign's certificate, chain,
// Rekor bundle and timestamp annotations (CosignLayer). The predicate type
// always comes from the signed payload, never from an annotation.
func tagEntry(env []byte, ann map[string]string) (Attachment, error) {
	var envelope protodsse.Envelope
	if err := protojson.Unmarshal(env, &envelope); err != nil {
		return Attachment{}, errors.New("layer is not a DSSE envelope")
	}
	vm, ok := ann[annVerificationMat]
	if !ok {
		predType, err := statementPredicateType(&envelope)
		if err != nil {
			return Attachment{}, err
		}
		cs, err := CosignLayer(env, ann)
		if err != nil {
			return Attachment{}, err
		}
		raw, err := cs.BundleJSON(nil)
		if err != nil {
			return Attachment{}, err
		}
		return Attachment{Source: SourceTag, Kind: kindOf(predType), Format: FormatCosign, PredicateType: predType, Signer: cs.signer(), Bundle: raw}, nil
	}
	var mat protobundle.VerificationMaterial
	if err := protojson.Unmarshal([]byte(vm), &mat); err != nil {
		return Attachment{}, errors.New("verification material annotation does not parse")
	}
	b, err := bundle.NewBundle(&protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: &mat,
		Content:              &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &envelope},
	})
	if err != nil {
		return Attachment{}, err
	}
	info, err := describe(b)
	if err != nil {
		return Attachment{}, err
	}
	return Attachment{Source: SourceTag, Kind: kindOf(info.predicateType), Format: FormatBundle, PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}, nil
}

// statementPredicateType reads the predicate type out of an envelope's
// in-toto statement.
func statementPredicateType(env *protodsse.Envelope) (string, error) {
	if env.GetPayloadType() != PayloadType {
		return "", errors.New("envelope does not hold an in-toto statement")
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(env.GetPayload(), &st); err != nil || st.PredicateType == "" {
		return "", errors.New("envelope does not hold an in-toto statement")
	}
	return st.PredicateType, nil
}

func certSigner(c *x509.Certificate) string {
	s, err := certificate.SummarizeCertificate(c)
	if err != nil {
		return "certificate without a Sigstore identity"
	}
	return fmt.Sprintf("%s (issuer %s)", s.SubjectAlternativeName, s.Issuer)
}

// readBlob reads one layer in full, refusing one larger than MaxBundleSize;
// go-containerregistry checks the digest as it streams.
func readBlob(img v1.Image, d v1.Descriptor) ([]byte, error) {
	if d.Size < 0 || d.Size > MaxBundleSize {
		return nil, fmt.Errorf("layer of %d bytes (limit %d)", d.Size, MaxBundleSize)
	}
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != d.Size {
		return nil, fmt.Errorf("layer is %d bytes, manifest says %d", len(data), d.Size)
	}
	return data, nil
}

// SortAttachments orders a listing by source, then predicate type, then
// digest, for stable output.
func SortAttachments(as []Attachment) {
	sort.SliceStable(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.PredicateType != b.PredicateType {
			return a.PredicateType < b.PredicateType
		}
		return a.Digest < b.Digest
	})
}
