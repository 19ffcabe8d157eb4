package admission_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/internal/admissiontest"
)

// FuzzParseReview: no body makes the review parser or the pod-spec reader
// panic, and a review that parses has a uid.
func FuzzParseReview(f *testing.F) {
	f.Add(admissiontest.Review("u", "/v1/Pod", admissiontest.Pod("example.com/a@sha256:"+string(bytes.Repeat([]byte("a"), 64))), false))
	f.Add(admissiontest.Review("u", "batch/v1/CronJob", []byte(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"initContainers":[{"image":"x"}]}}}}}}`), true))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","uid":"y"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := admission.ParseReview(body)
		if err != nil {
			return
		}
		if req.UID == "" {
			t.Fatal("a review without a uid parsed")
		}
		_, _ = admission.ReadWorkload(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.Object.Raw)
	})
}

// FuzzCheckManifests: no manifest stream makes the offline check panic or
// hang. The policy names no image, so nothing reaches a registry.
func FuzzCheckManifests(f *testing.F) {
	k := admissiontest.New(f, nil)
	k.WritePolicy(k.PolicyText(1, admissiontest.Components("  - name: none\n    kind: image\n    repositories: [registry.invalid/none]\n    digests: [\"sha256:"+string(bytes.Repeat([]byte("0"), 64))+"\"]\n"), time.Time{}), k.Release)
	src := &admission.PolicySource{Path: k.PolicyPath(), Deployment: admissiontest.Deployment, Trust: k.Trust(), StatePath: k.StatePath()}
	if err := src.Load(time.Now()); err != nil {
		f.Fatal(err)
	}
	c, err := admission.NewChecker(admission.Config{Policy: src, Deadline: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: nginx}]\n---\nkind: List\napiVersion: v1\nitems: [{apiVersion: v1, kind: Pod, spec: {containers: [{image: x}]}}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		results, err := c.CheckManifests(context.Background(), bytes.NewReader(data), "default")
		if err != nil {
			return
		}
		for _, r := range results {
			if r.Allowed() && !r.Skipped && len(r.Decision.Images) > 0 {
				t.Fatalf("admitted an image under a policy that names none: %+v", r)
			}
		}
	})
}
