package verify

import (
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/policy"
)

// Image is one container image judged on its own, as an admission
// controller sees it: no stack manifest, no other component.
type Image struct {
	Policy   *policy.Policy
	Material root.TrustedMaterial
	// Component is the policy's image entry the image falls under (see
	// policy.Policy.ImageComponent); "" when the policy names none.
	Component string
	// Digest is the digest of the image's manifest (or index), as the
	// caller resolved and hashed it.
	Digest digest.Digest
	// Unpinned is the reference when it names a tag and no digest: a
	// runtime that pulls the tag later may get other bytes, and the
	// decision says so (policy rule "ref").
	Unpinned string
	// Evidence is the bundles stored beside the image.
	Evidence []Evidence
	Now      time.Time
}

// CheckImage verifies every bundle of im against every signer the policy
// trusts, binds those that name the image's digest, and decides on the
// image alone with policy.EvaluateComponent: the same binding and the same
// rules as Check gives the image inside a deployment. It is pure.
func CheckImage(im Image) Report {
	if im.Policy == nil {
		im.Policy = &policy.Policy{}
	}
	b := newBinder(Deployment{
		Policy: im.Policy, Material: im.Material, Now: im.Now,
		Components: []Measured{{Kind: "image", Name: im.Component, Digest: im.Digest, Unpinned: im.Unpinned}},
	})
	var results []EvidenceResult
	for _, ev := range im.Evidence {
		res, _ := b.attach(ev)
		results = append(results, res)
	}
	facts := b.facts()
	r := policy.EvaluateComponent(im.Policy, facts.Components[0], im.Now)
	return Report{Allowed: r.Allowed, Decisions: r.Decisions, Evidence: results}
}
