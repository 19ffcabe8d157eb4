package verifier_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verifier"
)

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// Verify one attestation bundle for one file, signed by a key.
func ExampleAttestation() {
	dir, _ := os.MkdirTemp("", "trustgate-example-")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "guardrail.bin")
	_ = os.WriteFile(file, []byte("guardrail v1"), 0o644)

	// A signer attests the file (what trustgate attest does).
	key, _ := attest.GenerateKey(attest.ECDSAP256)
	sub, _ := attest.FileSubject(file)
	st, _ := attest.NewStatement(attest.PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`), sub)
	b, _ := attest.Sign(context.Background(), st, key, attest.Services{})
	raw, _ := attest.MarshalBundle(b)
	bundlePath := filepath.Join(dir, "guardrail.bundle.json")
	_ = os.WriteFile(bundlePath, raw, 0o644)

	// A verifier checks it for the file, by that key, of that type.
	res, err := verifier.Attestation(bundlePath, file, bundle.Signer{Key: key.Public()},
		bundle.Options{PredicateType: attest.PredicateCycloneDX})
	if err != nil {
		fmt.Println("not verified:", err)
		return
	}
	fmt.Println("verified:", res.PredicateType)

	// The same bundle for another file is refused.
	_ = os.WriteFile(file, []byte("guardrail v1, changed"), 0o644)
	_, err = verifier.Attestation(bundlePath, file, bundle.Signer{Key: key.Public()}, bundle.Options{})
	fmt.Println("changed file:", err != nil)
	// Output:
	// verified: https://cyclonedx.org/bom
	// changed file: true
}

// Verify the attestations stored beside an image in a registry (here one
// served in-process on loopback).
func ExampleImage() {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/ai/gateway:1.0"
	img, _ := random.Image(256, 1)
	tag, _ := name.NewTag(ref)
	_ = remote.Write(tag, img)

	// A signer attests the image by its digest and attaches it as a
	// referrer (what trustgate attest --attach does).
	ctx := context.Background()
	key, _ := attest.GenerateKey(attest.ECDSAP256)
	d, sub, _ := attest.ImageSubject(ctx, ref, pin.Registry{})
	st, _ := attest.NewStatement(attest.PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`), sub)
	b, _ := attest.Sign(ctx, st, key, attest.Services{})
	_, _ = attest.Attach(ctx, d, b, pin.Registry{})

	res, err := verifier.Image(ctx, ref, verifier.ImageConfig{Signer: bundle.Signer{Key: key.Public()}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range res.Attestations {
		fmt.Println(a.Source, a.Result.PredicateType)
	}
	fmt.Println("passed:", res.Passed())
	// Output:
	// referrer https://cyclonedx.org/bom
	// passed: true
}

// Verify a whole deployment against its signed policy, as trustgate verify
// does: cfg names the stack manifest, the policy (and its bundle beside
// it), who may sign the policy, and the attestation bundles to consider.
func ExampleDeployment() {
	key, _ := attest.GenerateKey(attest.ECDSAP256)
	cfg := verifier.Config{
		Stack:   "deploy/stack.yaml",
		Policy:  "deploy/policy.yaml",
		Trust:   policy.TrustRoot{Keys: []crypto.PublicKey{key.Public()}},
		Bundles: []string{"deploy/sbom.cdx.json.bundle.json"},
	}
	res, err := verifier.Deployment(context.Background(), cfg)
	switch {
	case errors.Is(err, verifier.ErrDenied):
		fmt.Println("denied before a report:", err)
	case err != nil:
		fmt.Println("bad input:", err)
	case !res.Allowed:
		for _, d := range res.Decisions {
			if !d.Allowed {
				fmt.Printf("FAIL %s %s: expected %s, found %s\n", d.Subject, d.Rule, d.Expected, d.Found)
			}
		}
	default:
		fmt.Println("PASS")
	}
}
