package attest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
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
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"google.golang.org/protobuf/encoding/protojson"
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

// Registry says how to reach registries. The zero value uses the default
// keychain (docker config, credential helpers) and http.DefaultTransport.
type Registry struct {
	Keychain  authn.Keychain
	Transport http.RoundTripper
}

func (r Registry) options(ctx context.Context) []remote.Option {
	kc := r.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if r.Transport != nil {
		opts = append(opts, remote.WithTransport(r.Transport))
	}
	return opts
}

// ImageSubject resolves ref (a tag or digest) to the digest of the manifest
// or index the registry serves for it now, and names it by repository as
// cosign does. A tag is read once: sign the returned digest, not the tag.
func ImageSubject(ctx context.Context, ref string, reg Registry) (name.Digest, Subject, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return name.Digest{}, Subject{}, fmt.Errorf("%w: %q: %v", ErrImage, truncate(ref), err)
	}
	desc, err := remote.Head(r, reg.options(ctx)...)
	if err != nil {
		return name.Digest{}, Subject{}, fmt.Errorf("%w: resolving %q: %w", ErrImage, ref, err)
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return name.Digest{}, Subject{}, fmt.Errorf("%w: %q: registry serves %s for that digest", ErrImage, ref, desc.Digest)
	}
	if desc.Digest.Algorithm != "sha256" {
		return name.Digest{}, Subject{}, fmt.Errorf("%w: %q: manifest digest %s is not sha256", ErrImage, ref, desc.Digest)
	}
	d := r.Context().Digest(desc.Digest.String())
	return d, Subject{Name: r.Context().Name(), Digest: map[string]string{"sha256": desc.Digest.Hex}}, nil
}

// Attachment is one attestation stored beside an image. Nothing in it is
// verified: Signer is what the bundle claims, for a person to read.
type Attachment struct {
	Source        string // SourceReferrer or SourceTag
	Digest        string // the referrer manifest's digest, or the tag layer's
	PredicateType string
	Signer        string
	Bundle        []byte // the bundle as JSON
}

// Attach stores the bundle b beside the image img: as an OCI 1.1 referrer
// when the registry has the referrers API, else as a layer of the cosign tag
// sha256-<hex>.att. Storing the same bundle twice is a no-op. Two writers
// appending to the same cosign tag at once can lose one of the two (the tag
// scheme has no compare-and-swap); the referrers API has no such race.
func Attach(ctx context.Context, img name.Digest, b *bundle.Bundle, reg Registry) (Attachment, error) {
	opts := reg.options(ctx)
	subject, err := remote.Head(img, opts...)
	if err != nil {
		return Attachment{}, fmt.Errorf("%w: %s: %w", ErrImage, img, err)
	}
	info, err := describe(b)
	if err != nil {
		return Attachment{}, err
	}
	ok, err := hasReferrersAPI(ctx, img, reg)
	if err != nil {
		return Attachment{}, err
	}
	if ok {
		return attachReferrer(img, subject, info, opts)
	}
	return attachTag(img, info, opts)
}

// bundleInfo is what Attach and the listing need to know about a bundle.
type bundleInfo struct {
	raw           []byte // compact JSON
	predicateType string
	signer        string
	bundle        *bundle.Bundle
}

func describe(b *bundle.Bundle) (bundleInfo, error) {
	raw, err := protojson.Marshal(b.Bundle)
	if err != nil {
		return bundleInfo{}, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return bundleInfo{}, err
	}
	info := bundleInfo{raw: compact.Bytes(), bundle: b}
	env := b.GetDsseEnvelope()
	if env == nil {
		return bundleInfo{}, fmt.Errorf("%w: bundle holds no DSSE envelope", ErrAttachment)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if env.GetPayloadType() != PayloadType || json.Unmarshal(env.GetPayload(), &st) != nil || st.PredicateType == "" {
		return bundleInfo{}, fmt.Errorf("%w: envelope does not hold an in-toto statement", ErrAttachment)
	}
	info.predicateType = st.PredicateType
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
		s, err := certificate.SummarizeCertificate(c)
		if err != nil {
			return "certificate without a Sigstore identity"
		}
		return fmt.Sprintf("%s (issuer %s)", s.SubjectAlternativeName, s.Issuer)
	}
	if pk := vc.PublicKey(); pk != nil {
		return "key " + pk.Hint()
	}
	return "unknown"
}

// hasReferrersAPI asks the registry's referrers endpoint for img: 200 means
// the API is there; 404 (or 400/406 from older registries) means it is not.
func hasReferrersAPI(ctx context.Context, img name.Digest, reg Registry) (bool, error) {
	kc := reg.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	auth, err := kc.Resolve(img.Context())
	if err != nil {
		return false, fmt.Errorf("%w: credentials for %s: %w", ErrRegistry, img.Context(), err)
	}
	base := reg.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt, err := transport.NewWithContext(ctx, img.Context().Registry, auth, base, []string{img.Context().Scope(transport.PullScope)})
	if err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrRegistry, img.Context().Registry, err)
	}
	u := fmt.Sprintf("%s://%s/v2/%s/referrers/%s", img.Context().Registry.Scheme(), img.Context().RegistryStr(), img.Context().RepositoryStr(), img.DigestStr())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrRegistry, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxManifestSize))
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable, http.StatusMethodNotAllowed:
		return false, nil
	}
	return false, fmt.Errorf("%w: referrers API for %s answered %s", ErrRegistry, img, resp.Status)
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
	return Attachment{Source: SourceReferrer, Digest: h.String(), PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}, nil
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
	envelope, err := protojson.Marshal(info.bundle.GetDsseEnvelope())
	if err != nil {
		return Attachment{}, err
	}
	var env bytes.Buffer
	if err := json.Compact(&env, envelope); err != nil {
		return Attachment{}, err
	}
	vm, err := protojson.Marshal(info.bundle.GetVerificationMaterial())
	if err != nil {
		return Attachment{}, err
	}
	layer := static.NewLayer(env.Bytes(), dsseMediaType)
	ld, err := layer.Digest()
	if err != nil {
		return Attachment{}, err
	}
	att := Attachment{Source: SourceTag, Digest: ld.String(), PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}
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
	img, err := remote.Image(tag, opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrRegistry, tag, err)
	}
	return img, nil
}

// Attachments lists the attestations stored beside img, referrers first,
// then the cosign tag. An entry that cannot be read fails the listing with
// ErrAttachment: a listing that skipped it would hide it.
func Attachments(ctx context.Context, img name.Digest, reg Registry) ([]Attachment, error) {
	opts := reg.options(ctx)
	refs, err := referrerAttachments(img, opts)
	if err != nil {
		return nil, err
	}
	tags, err := tagAttachments(img, opts)
	if err != nil {
		return nil, err
	}
	return append(refs, tags...), nil
}

func referrerAttachments(img name.Digest, opts []remote.Option) ([]Attachment, error) {
	idx, err := remote.Referrers(img, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: referrers of %s: %w", ErrRegistry, img, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%w: referrers of %s: %w", ErrRegistry, img, err)
	}
	if len(im.Manifests) > maxReferrers {
		return nil, fmt.Errorf("%w: %s has more than %d referrers", ErrAttachment, img, maxReferrers)
	}
	var out []Attachment
	for _, d := range im.Manifests {
		// Some registries (go-containerregistry's own among them) report
		// the config's media type instead of the manifest's artifactType;
		// for those, the manifest itself says what it is.
		switch d.ArtifactType {
		case BundleMediaType, emptyConfigMediaType, "":
		default:
			continue
		}
		if len(out) >= MaxAttachments {
			return nil, fmt.Errorf("%w: more than %d attestations on %s", ErrAttachment, MaxAttachments, img)
		}
		a, ok, err := readReferrer(img.Context().Digest(d.Digest.String()), opts)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// readReferrer reads one referrer; ok is false when it is not a bundle.
func readReferrer(ref name.Digest, opts []remote.Option) (a Attachment, ok bool, err error) {
	m, err := remote.Image(ref, opts...)
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrRegistry, ref, err)
	}
	mf, err := m.Manifest()
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrAttachment, ref, err)
	}
	if mf.ArtifactType != BundleMediaType {
		return a, false, nil
	}
	if len(mf.Layers) != 1 || mf.Layers[0].MediaType != BundleMediaType {
		return a, false, fmt.Errorf("%w: %s: want one layer of type %s", ErrAttachment, ref, BundleMediaType)
	}
	raw, err := readBlob(m, mf.Layers[0])
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrAttachment, ref, err)
	}
	info, err := parseBundle(raw)
	if err != nil {
		return a, false, fmt.Errorf("%w: %s: %w", ErrAttachment, ref, err)
	}
	return Attachment{Source: SourceReferrer, Digest: ref.DigestStr(), PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}, true, nil
}

func tagAttachments(img name.Digest, opts []remote.Option) ([]Attachment, error) {
	tag := CosignTag(img)
	m, err := remote.Image(tag, opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrRegistry, tag, err)
	}
	mf, err := m.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrAttachment, tag, err)
	}
	if len(mf.Layers) > MaxAttachments {
		return nil, fmt.Errorf("%w: more than %d attestations in %s", ErrAttachment, MaxAttachments, tag)
	}
	var out []Attachment
	for _, l := range mf.Layers {
		if l.MediaType != dsseMediaType {
			continue
		}
		env, err := readBlob(m, l)
		if err != nil {
			return nil, fmt.Errorf("%w: %s layer %s: %w", ErrAttachment, tag, l.Digest, err)
		}
		a, err := tagEntry(env, l.Annotations)
		if err != nil {
			return nil, fmt.Errorf("%w: %s layer %s: %w", ErrAttachment, tag, l.Digest, err)
		}
		a.Digest = l.Digest.String()
		out = append(out, a)
	}
	return out, nil
}

// tagEntry rebuilds the bundle from a tag layer (the envelope) and its
// verification material annotation. A layer written by cosign has no such
// annotation: it is listed from the envelope and certificate alone, with
// no bundle.
func tagEntry(env []byte, ann map[string]string) (Attachment, error) {
	vm, ok := ann[annVerificationMat]
	if !ok {
		var e struct {
			PayloadType string `json:"payloadType"`
		}
		if err := json.Unmarshal(env, &e); err != nil || e.PayloadType != PayloadType {
			return Attachment{}, errors.New("layer is not a DSSE envelope of an in-toto statement")
		}
		a := Attachment{Source: SourceTag, PredicateType: ann[annCosignPredicateType], Signer: "unknown (cosign entry without a bundle)"}
		if p, _ := pem.Decode([]byte(ann[annCosignCertificate])); p != nil {
			if c, err := x509.ParseCertificate(p.Bytes); err == nil {
				if s, err := certificate.SummarizeCertificate(c); err == nil {
					a.Signer = fmt.Sprintf("%s (issuer %s)", s.SubjectAlternativeName, s.Issuer)
				}
			}
		}
		return a, nil
	}
	var mat protobundle.VerificationMaterial
	if err := protojson.Unmarshal([]byte(vm), &mat); err != nil {
		return Attachment{}, errors.New("verification material annotation does not parse")
	}
	var envelope protodsse.Envelope
	if err := protojson.Unmarshal(env, &envelope); err != nil {
		return Attachment{}, errors.New("layer is not a DSSE envelope")
	}
	pb := protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: &mat,
		Content:              &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &envelope},
	}
	b, err := bundle.NewBundle(&pb)
	if err != nil {
		return Attachment{}, err
	}
	info, err := describe(b)
	if err != nil {
		return Attachment{}, err
	}
	return Attachment{Source: SourceTag, PredicateType: info.predicateType, Signer: info.signer, Bundle: info.raw}, nil
}

// ParseBundle reads a Sigstore bundle's JSON (at most MaxBundleSize bytes).
func ParseBundle(raw []byte) (*bundle.Bundle, error) {
	info, err := parseBundle(raw)
	return info.bundle, err
}

func parseBundle(raw []byte) (bundleInfo, error) {
	if len(raw) > MaxBundleSize {
		return bundleInfo{}, fmt.Errorf("bundle larger than %d bytes", MaxBundleSize)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return bundleInfo{}, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	return describe(&b)
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
