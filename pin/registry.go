package pin

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustgate/trustgate/digest"
)

// Registry is how trustgate reaches container registries, the one
// configuration every registry call takes (pinning images, listing and
// attaching attestations). The zero value uses the credentials of the
// Docker config (as docker and crane do), the default transport, and no
// timeout beyond the caller's context.
type Registry struct {
	// Keychain finds credentials; nil is authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport carries the requests; nil is the default transport.
	Transport http.RoundTripper
	// Timeout bounds each call, when not zero.
	Timeout time.Duration
}

// Options are go-containerregistry's options for one call under ctx.
func (r Registry) Options(ctx context.Context) []remote.Option {
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

// Context bounds one call by the registry's timeout.
func (r Registry) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.Timeout > 0 {
		return context.WithTimeout(ctx, r.Timeout)
	}
	return context.WithCancel(ctx)
}

// Reference resolves a registry reference (a tag or a digest) once, to the
// digest of the manifest (or index) bytes the registry serves now,
// computed from those bytes and never taken from a header a proxy could
// rewrite. A digest reference must be served as that digest.
func (r Registry) Reference(ctx context.Context, ref string) (name.Reference, *remote.Descriptor, name.Digest, error) {
	parsed, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, nil, name.Digest{}, err
	}
	ctx, cancel := r.Context(ctx)
	defer cancel()
	desc, err := remote.Get(parsed, r.Options(ctx)...)
	if err != nil {
		return nil, nil, name.Digest{}, fmt.Errorf("resolving image %q: %w", ref, err)
	}
	sum, _, err := v1.SHA256(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, nil, name.Digest{}, err
	}
	if d, ok := parsed.(name.Digest); ok && d.DigestStr() != sum.String() {
		return nil, nil, name.Digest{}, fmt.Errorf("registry served %s for a reference pinned to %s: %w", sum, d.DigestStr(), digest.ErrMismatch)
	}
	return parsed, desc, parsed.Context().Digest(sum.String()), nil
}
