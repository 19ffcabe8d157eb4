package localmodel_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/localmodel"
	"github.com/trustgate/trustgate/oms"
	"github.com/trustgate/trustgate/stack"

	"github.com/trustgate/trustgate/internal/testsign"
	"github.com/trustgate/trustgate/oms/omstest"
	"github.com/trustgate/trustgate/verifier"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// signedModel lays out a manifest folder with a model folder in it,
// signed as model_signing signs it (model.sig inside the folder, left out
// of the signature), and returns the folder and the model's entry.
func signedModel(t *testing.T, k *attest.Key) (string, stack.Model) {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "models", "tiny")
	for name, content := range map[string]string{
		"config.json":               `{"layers": 2}`,
		"model.safetensors":         "weights, sixteen bytes and more",
		"tokenizer/tokenizer.json":  `{"vocab": ["a", "b"]}`,
		".git/HEAD":                 "ref: refs/heads/main\n",
		"tokenizer/special_tokens":  "<s> </s>",
		"nested/deeper/extra.bin":   "extra",
		"nested/deeper/extra2.bin":  "extra two",
		"nested/deeper/extra3.json": "{}",
	} {
		write(t, filepath.Join(model, filepath.FromSlash(name)), content)
	}
	sig, _ := omstest.ModelSignature(t, model, k, "model.sig")
	write(t, filepath.Join(model, "model.sig"), string(sig))
	return dir, stack.Model{Name: "tiny", File: "models/tiny", Signature: "models/tiny/model.sig"}
}

// verified verifies the measured signature's bundle with k, as verify
// does before it calls Match.
func verified(t *testing.T, m *localmodel.Measurement, k *attest.Key) *attest.Statement {
	t.Helper()
	b, err := bundle.Parse(m.Signature)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Unbound(b, bundle.Signer{Key: k.Public()}, bundle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Statement
}

// A model without a signature is measured as plugins are: a file by its
// SHA-256, a folder by its h1 tree digest.
func TestMeasureUnsigned(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "m.gguf"), "GGUF tiny")
	write(t, filepath.Join(dir, "folder", "a.bin"), "a")
	write(t, filepath.Join(dir, "folder", "sub", "b.bin"), "b")
	ctx := context.Background()
	m, err := localmodel.Measure(ctx, dir, stack.Model{Name: "m", File: "m.gguf"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != digest.FromBytes([]byte("GGUF tiny")) || m.Signed() {
		t.Errorf("file measured as %+v", m)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tree, err := digest.Tree(root, "folder")
	if err != nil {
		t.Fatal(err)
	}
	m, err = localmodel.Measure(ctx, dir, stack.Model{Name: "f", File: "folder"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != tree || m.Signed() {
		t.Errorf("folder measured as %s, want %s", m.Digest, tree)
	}
}

// A signed model folder is measured as its signature serializes it (the
// git paths and the signature file left out), to the digest its
// signature's subject names, and the verified statement matches it. One
// file changed, added or removed, and the statement no longer matches,
// naming the file.
func TestSignedModelMatches(t *testing.T) {
	k, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		change func(model string)
		want   error
		file   string
	}{
		{"unchanged", func(string) {}, nil, ""},
		{"a changed file", func(model string) { write(t, filepath.Join(model, "config.json"), `{"layers": 3}`) }, oms.ErrMismatch, "config.json"},
		{"an added file", func(model string) { write(t, filepath.Join(model, "tokenizer", "added.py"), "import os") }, oms.ErrExtra, "tokenizer/added.py"},
		{"a removed file", func(model string) { _ = os.Remove(filepath.Join(model, "model.safetensors")) }, oms.ErrMissing, "model.safetensors"},
		{"a renamed file", func(model string) {
			_ = os.Rename(filepath.Join(model, "nested", "deeper", "extra2.bin"), filepath.Join(model, "nested", "deeper", "extra2x.bin"))
		}, oms.ErrMissing, "nested/deeper/extra2.bin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, spec := signedModel(t, k)
			before, err := localmodel.Measure(ctx, dir, spec)
			if err != nil {
				t.Fatal(err)
			}
			st := verified(t, before, k)
			if !before.Signed() || before.Digest.String() != "sha256:"+st.Subject[0].Digest["sha256"] {
				t.Fatalf("measured %s, the signature names sha256:%s", before.Digest, st.Subject[0].Digest["sha256"])
			}
			c.change(filepath.Join(dir, "models", "tiny"))
			m, err := localmodel.Measure(ctx, dir, spec)
			if err != nil {
				t.Fatal(err)
			}
			err = localmodel.Match(verified(t, m, k), m)
			if c.want == nil {
				if err != nil {
					t.Fatalf("an unchanged model does not match its signature: %v", err)
				}
				if err := before.Same(m); err != nil {
					t.Fatalf("measured twice, the model differs from itself: %v", err)
				}
				return
			}
			if !errors.Is(err, localmodel.ErrNotSigned) || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.file) {
				t.Fatalf("err = %v, want %v naming %q", err, c.want, c.file)
			}
			if err := before.Same(m); !errors.Is(err, localmodel.ErrChanged) {
				t.Fatalf("drift check: err = %v, want ErrChanged", err)
			}
		})
	}
}

// The statement a signature names must be the serialization measured:
// one that serializes another way (shards), or that another model's
// signature signs, does not match.
func TestMatchRefusesAnotherStatement(t *testing.T) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	dir, spec := signedModel(t, k)
	m, err := localmodel.Measure(context.Background(), dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := oms.Serialize(context.Background(), filepath.Join(dir, "models", "tiny"), oms.Options{Method: oms.MethodShards, ShardSize: 8, IgnorePaths: slices.Concat(oms.GitPaths, []string{"model.sig"})})
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	write(t, filepath.Join(other, "model.safetensors"), "other weights")
	_, otherMan := omstest.ModelSignature(t, other, k)
	for name, man := range map[string]*oms.Manifest{"shards": shards, "another model": otherMan} {
		st, err := man.Statement()
		if err != nil {
			t.Fatal(err)
		}
		if err := localmodel.Match(st, m); !errors.Is(err, localmodel.ErrNotSigned) {
			t.Errorf("%s: err = %v, want ErrNotSigned", name, err)
		}
	}
}

// A signature file that is no OMS signature is an error, never a model
// measured without one.
func TestUnreadableSignature(t *testing.T) {
	k, _ := attest.GenerateKey(attest.ECDSAP256)
	dir, spec := signedModel(t, k)
	st, err := attest.NewStatement(attest.PredicateSLSAProvenance, []byte(`{}`), attest.Subject{Name: "x", Digest: map[string]string{"sha256": testsign.Sum("x")}})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"not JSON":          []byte("model_signing was here"),
		"another predicate": testsign.Bundle(t, st, k),
		"a message":         testsign.Message(t, k, []byte("weights")),
	} {
		write(t, filepath.Join(dir, filepath.FromSlash(spec.Signature)), string(content))
		if _, err := localmodel.Measure(context.Background(), dir, spec); !errors.Is(err, localmodel.ErrSignature) {
			t.Errorf("%s: err = %v, want ErrSignature", name, err)
		}
	}
}

// A key signature written by model_signing v1.0.0 (published in
// model-transparency's fixtures), which puts the public key where a
// bundle holds only a hint, is measured and matches its model: the
// misplaced, unsigned key is dropped before the bundle verifier reads it,
// and the policy's key verifies.
func TestPublishedLegacyKeySignature(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../testdata/model-transparency/scripts/tests/v1.0.0-elliptic-key")); err != nil {
		t.Fatal(err)
	}
	m, err := localmodel.Measure(context.Background(), dir, stack.Model{Name: "signme", File: "signme-1", Signature: "model.sig"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.PublicKeys([]string{"../testdata/model-transparency/scripts/tests/keys/certificate/signing-key-pub.pem"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Parse(m.Signature)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Unbound(b, bundle.Signer{Key: keys[0]}, bundle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := localmodel.Match(res.Statement, m); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "signme-1"), "changed")
	changed, err := localmodel.Measure(context.Background(), dir, stack.Model{Name: "signme", File: "signme-1", Signature: "model.sig"})
	if err != nil {
		t.Fatal(err)
	}
	if err := localmodel.Match(res.Statement, changed); err == nil {
		t.Fatal("a changed model file matches its signature")
	}
}
