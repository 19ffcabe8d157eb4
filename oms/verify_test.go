package oms_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/oms"

	"github.com/trustgate/trustgate/internal/testsign"
)

// newModel writes a small model folder named name and returns its path.
func newModel(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	mkdir(t, root)
	for p, c := range files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(p)), c)
	}
	return root
}

var modelFiles = map[string]string{
	"config.json":         `{"layers": 2}`,
	"weights/part-0.bin":  "weights zero, sixteen bytes and more",
	"weights/part-1.bin":  "weights one",
	"tokenizer/vocab.txt": "a\nb\nc\n",
}

// signed is a model folder and its OMS signature, as model_signing's CLI
// makes them (git paths and the signature file ignored).
type signed struct {
	dir string
	raw []byte
	key *attest.Key
}

// signModel serializes dir with opts plus the ignore paths of
// model_signing's CLI, and signs its statement with a new key.
func signModel(t *testing.T, dir string, opts oms.Options) signed {
	t.Helper()
	opts.IgnorePaths = append(append(opts.IgnorePaths, oms.GitPaths...), "model.sig")
	return signAs(t, dir, opts)
}

// signAs serializes dir with opts and signs its statement with a new key.
func signAs(t *testing.T, dir string, opts oms.Options) signed {
	t.Helper()
	m, err := oms.Serialize(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Statement()
	if err != nil {
		t.Fatal(err)
	}
	k, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return signed{dir: dir, raw: testsign.Bundle(t, st, k), key: k}
}

func (s signed) verify(t *testing.T, vo oms.VerifyOptions) (*oms.Result, error) {
	t.Helper()
	return oms.Verify(context.Background(), s.dir, s.raw, bundle.Signer{Key: s.key.Public()}, bundle.Options{}, vo)
}

// TestVerifySignedModel: a model verifies against its signature, whatever
// the folder is called, with the git paths and the signature file beside
// it ignored.
func TestVerifySignedModel(t *testing.T) {
	for _, opts := range []oms.Options{{}, {Method: oms.MethodShards, ShardSize: 16}} {
		s := signModel(t, newModel(t, "model", modelFiles), opts)
		writeFile(t, filepath.Join(s.dir, "model.sig"), string(s.raw))
		writeFile(t, filepath.Join(s.dir, ".git", "HEAD"), "ref: refs/heads/main\n")
		renamed := filepath.Join(filepath.Dir(s.dir), "renamed-model")
		if err := os.Rename(s.dir, renamed); err != nil {
			t.Fatal(err)
		}
		s.dir = renamed
		res, err := s.verify(t, oms.VerifyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", opts.Method, err)
		}
		wantN := 4
		if opts.Method == oms.MethodShards {
			wantN = 6 // part-0.bin has 36 bytes: three shards of 16
		}
		if res.ModelName != "model" || res.Resources != wantN || res.Bundle.SignerID != "key:"+s.key.Hint() {
			t.Errorf("%s: result %+v", opts.Method, res)
		}
	}
}

// TestVerifyRefusals: a signed model, broken one way at a time, is
// refused with the error that names what broke.
func TestVerifyRefusals(t *testing.T) {
	other, _ := attest.GenerateKey(attest.ECDSAP256)
	cases := []struct {
		name string
		// setup breaks the model or the signature; it returns the bundle
		// to verify and the signer required.
		setup  func(t *testing.T, s signed) ([]byte, bundle.Signer)
		vo     oms.VerifyOptions
		want   []error
		detail string
	}{
		{name: "a changed file", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			writeFile(t, filepath.Join(s.dir, "weights", "part-1.bin"), "weights 1")
			return s.raw, keyOf(s)
		}, want: []error{oms.ErrMismatch}, detail: `"weights/part-1.bin" (signed sha256:`},
		{name: "an added file", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			writeFile(t, filepath.Join(s.dir, "weights", "part-2.bin"), "more")
			return s.raw, keyOf(s)
		}, want: []error{oms.ErrExtra}, detail: `"weights/part-2.bin"`},
		{name: "a removed file", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			remove(t, filepath.Join(s.dir, "config.json"))
			return s.raw, keyOf(s)
		}, want: []error{oms.ErrMissing}, detail: `1 not found: "config.json"`},
		{name: "a renamed file", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			rename(t, filepath.Join(s.dir, "config.json"), filepath.Join(s.dir, "config.yaml"))
			return s.raw, keyOf(s)
		}, want: []error{oms.ErrMissing, oms.ErrExtra}, detail: `"config.yaml" (same content as "config.json": renamed?)`},
		{name: "another model's signature", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			o := signModel(t, newModel(t, "other-model", map[string]string{"model.safetensors": "other"}), oms.Options{})
			return o.raw, keyOf(o)
		}, want: []error{oms.ErrMissing, oms.ErrExtra}, detail: `signature of model "other-model"`},
		{name: "another key", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			return s.raw, bundle.Signer{Key: other.Public()}
		}, want: []error{bundle.ErrSignature}},
		{name: "a symbolic link where a file was", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			writeFile(t, filepath.Join(s.dir, ".git", "config.json"), modelFiles["config.json"])
			remove(t, filepath.Join(s.dir, "config.json"))
			symlink(t, ".git/config.json", filepath.Join(s.dir, "config.json"))
			return s.raw, keyOf(s)
		}, want: []error{oms.ErrSymlink}, detail: `"config.json" is a symbolic link`},
		{name: "a tampered payload", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			return testsign.Edit(t, s.raw, func(m map[string]any) {
				env := testsign.Envelope(m)
				p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
				p = []byte(strings.Replace(string(p), `"allow_symlinks":false`, `"allow_symlinks":true`, 1))
				env["payload"] = base64.StdEncoding.EncodeToString(p)
			}), keyOf(s)
		}, want: []error{bundle.ErrSignature}},
		{name: "a signed predicate whose resources do not hash to its subject", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			p := string(statementOf(t, s.raw))
			first := firstResource(p)
			i := strings.Index(first, `"digest":"`) + len(`"digest":"`)
			p = strings.Replace(p, first, first[:i]+strings.Repeat("0", 64)+first[i+64:], 1)
			return resign(t, s, p), keyOf(s)
		}, want: []error{oms.ErrPredicate}, detail: "hash to sha256:"},
		{name: "a FIFO", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			if err := syscall.Mkfifo(filepath.Join(s.dir, "pipe"), 0o644); err != nil {
				t.Skip("no FIFOs here")
			}
			return s.raw, keyOf(s)
		}, want: []error{oms.ErrSpecialFile}, detail: `"pipe" is a FIFO`},
		{name: "a signed file the verifier ignores", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			return s.raw, keyOf(s)
		}, vo: oms.VerifyOptions{IgnorePaths: []string{"weights"}}, want: []error{oms.ErrMissing}, detail: `"weights/part-0.bin"`},
		{name: "an ignore path outside the model", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			return s.raw, keyOf(s)
		}, vo: oms.VerifyOptions{IgnorePaths: []string{"../elsewhere"}}, want: []error{oms.ErrUnsupported}},
		{name: "a message signature", setup: func(t *testing.T, s signed) ([]byte, bundle.Signer) {
			return testsign.Message(t, s.key, []byte("model")), keyOf(s)
		}, want: []error{bundle.ErrPayloadType}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := signModel(t, newModel(t, "model", modelFiles), oms.Options{})
			raw, signer := c.setup(t, s)
			_, err := oms.Verify(context.Background(), s.dir, raw, signer, bundle.Options{}, c.vo)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want %v", err, w)
				}
			}
			if err != nil && !strings.Contains(err.Error(), c.detail) {
				t.Errorf("error %q does not say %q", err, c.detail)
			}
		})
	}
}

// TestVerifyPredicateRefusals: validly signed statements that are not OMS
// signatures this package can check are refused, each with its error.
func TestVerifyPredicateRefusals(t *testing.T) {
	s := signModel(t, newModel(t, "model", modelFiles), oms.Options{})
	base := string(statementOf(t, s.raw))
	swap := func(old, new string) func(string) string {
		return func(st string) string {
			if !strings.Contains(st, old) {
				t.Fatalf("%q is not in the statement", old)
			}
			return strings.Replace(st, old, new, 1)
		}
	}
	cases := []struct {
		name string
		edit func(string) string
		want error
	}{
		{"blake2b", swap(`"hash_type":"sha256"`, `"hash_type":"blake2b"`), oms.ErrUnsupported},
		{"an unknown method", swap(`"method":"files"`, `"method":"tensors"`), oms.ErrUnsupported},
		{"an unknown serialization parameter", swap(`"method":"files"`, `"method":"files","chunk_size":8`), oms.ErrUnsupported},
		{"a shard size for files", swap(`"method":"files"`, `"method":"files","shard_size":8`), oms.ErrUnsupported},
		{"allow_symlinks as a string", swap(`"allow_symlinks":false`, `"allow_symlinks":"false"`), oms.ErrPredicate},
		{"an ignore path of the whole model", swap(`"ignore_paths":[`, `"ignore_paths":[".",`), oms.ErrUnsupported},
		{"an absolute ignore path", swap(`"ignore_paths":[`, `"ignore_paths":["/etc",`), oms.ErrUnsupported},
		{"an unknown resource field", swap(`"name":"config.json"`, `"name":"config.json","size":13`), oms.ErrUnsupported},
		{"an in-toto Statement v0.1", swap(`"_type":"https://in-toto.io/Statement/v1"`, `"_type":"https://in-toto.io/Statement/v0.1"`), oms.ErrPredicate},
		{"another predicate type", swap(oms.PredicateType, "https://slsa.dev/provenance/v1"), bundle.ErrPredicateType},
		{"model_signing v0.2's predicate type", swap(oms.PredicateType, "https://model_signing/Digests/v0.1"), oms.ErrUnsupported},
		{"a resource listed twice", swap(`"resources":[`, `"resources":[`+firstResource(base)+`,`), oms.ErrPredicate},
		{"a subject without sha256", swap(`"digest":{"sha256":"`, `"digest":{"sha512":"`), oms.ErrPredicate},
		{"a second subject", swap(`"subject":[`, `"subject":[{"name":"x","digest":{"sha256":"`+strings.Repeat("0", 64)+`"}},`), oms.ErrPredicate},
		{"no resources", swap(`"resources":`, `"resourcez":`), oms.ErrPredicate},
		{"resources out of order", moveFirstResourceLast, oms.ErrPredicate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := oms.Verify(context.Background(), s.dir, resign(t, s, c.edit(base)), keyOf(s), bundle.Options{}, oms.VerifyOptions{})
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestVerifyGitPaths: git paths are left out by default, as model_signing
// verify does, unless the caller checks them or the signature lists a file
// under one.
func TestVerifyGitPaths(t *testing.T) {
	s := signAs(t, newModel(t, "model", modelFiles), oms.Options{})
	writeFile(t, filepath.Join(s.dir, ".git", "HEAD"), "ref: refs/heads/main\n")
	if _, err := s.verify(t, oms.VerifyOptions{}); err != nil {
		t.Fatalf("a .git folder beside a signature without ignore paths: %v", err)
	}
	if _, err := s.verify(t, oms.VerifyOptions{IncludeGitPaths: true}); !errors.Is(err, oms.ErrExtra) || !strings.Contains(err.Error(), `".git/HEAD"`) {
		t.Errorf("git paths checked: got %v, want ErrExtra naming .git/HEAD", err)
	}
	withGit := signAs(t, newModel(t, "model", map[string]string{"w.bin": "w", ".gitattributes": "*.bin lfs\n"}), oms.Options{})
	if _, err := withGit.verify(t, oms.VerifyOptions{}); err != nil {
		t.Errorf("a signature that lists .gitattributes: %v", err)
	}
	writeFile(t, filepath.Join(withGit.dir, ".gitattributes"), "* text\n")
	if _, err := withGit.verify(t, oms.VerifyOptions{}); !errors.Is(err, oms.ErrMismatch) {
		t.Errorf("a changed .gitattributes it lists: got %v, want ErrMismatch", err)
	}
}

// TestVerifySymlinks: links count only when the signature allows them,
// and even then never leave the model folder.
func TestVerifySymlinks(t *testing.T) {
	dir := newModel(t, "model", modelFiles)
	symlink(t, "weights/part-1.bin", filepath.Join(dir, "alias.bin"))
	symlink(t, "weights", filepath.Join(dir, "weights-link")) // a link to a folder is skipped
	s := signModel(t, dir, oms.Options{AllowSymlinks: true})
	res, err := s.verify(t, oms.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resources != 5 || !res.Serialization.AllowSymlinks {
		t.Errorf("result %+v, want 5 files (the link to a file counted)", res)
	}
	outside := writeFile(t, filepath.Join(t.TempDir(), "secret"), "outside")
	symlink(t, outside, filepath.Join(dir, "escape"))
	if _, err := s.verify(t, oms.VerifyOptions{}); !errors.Is(err, oms.ErrSymlink) {
		t.Errorf("absolute link: got %v, want ErrSymlink", err)
	}
	remove(t, filepath.Join(dir, "escape"))
	rel, _ := filepath.Rel(dir, outside)
	symlink(t, rel, filepath.Join(dir, "escape"))
	if _, err := s.verify(t, oms.VerifyOptions{}); !errors.Is(err, oms.ErrSymlink) {
		t.Errorf("relative link out of the folder: got %v, want ErrSymlink", err)
	}
	remove(t, filepath.Join(dir, "escape"))
	symlink(t, "nowhere", filepath.Join(dir, "escape"))
	if _, err := s.verify(t, oms.VerifyOptions{}); !errors.Is(err, oms.ErrSymlink) {
		t.Errorf("dangling link: got %v, want ErrSymlink", err)
	}
}

// TestVerifyShardChanged: with shards, a changed byte names its shard.
func TestVerifyShardChanged(t *testing.T) {
	s := signModel(t, newModel(t, "model", modelFiles), oms.Options{Method: oms.MethodShards, ShardSize: 16})
	writeFile(t, filepath.Join(s.dir, "weights", "part-0.bin"), "weights zero, sixteen bytes AND more")
	_, err := s.verify(t, oms.VerifyOptions{})
	if !errors.Is(err, oms.ErrMismatch) || !strings.Contains(err.Error(), `"weights/part-0.bin:16:32"`) {
		t.Errorf("got %v, want ErrMismatch naming weights/part-0.bin:16:32", err)
	}
}

// TestVerifyKeyless: an OMS statement signed keyless (in-process Sigstore)
// verifies for its identity, and not for another.
func TestVerifyKeyless(t *testing.T) {
	dir := newModel(t, "model", modelFiles)
	m, err := oms.Serialize(context.Background(), dir, oms.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := testsign.NewVirtual(t)
	raw := v.Keyless(t, "ml-team@example.com", m.Payload())
	opts := bundle.Options{Material: v.TrustedMaterial()}
	id, _ := bundle.NewIdentity(testsign.Issuer, "", "ml-team@example.com", "")
	if _, err := oms.Verify(context.Background(), dir, raw, bundle.Signer{Identity: id}, opts, oms.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	fork, _ := bundle.NewIdentity(testsign.Issuer, "", "someone@example.com", "")
	if _, err := oms.Verify(context.Background(), dir, raw, bundle.Signer{Identity: fork}, opts, oms.VerifyOptions{}); !errors.Is(err, bundle.ErrUntrustedSigner) {
		t.Errorf("another identity: got %v, want ErrUntrustedSigner", err)
	}
}

// TestVerifyLimits: the bundle's size and the folder's file count are
// bounded.
func TestVerifyLimits(t *testing.T) {
	s := signModel(t, newModel(t, "model", modelFiles), oms.Options{})
	huge := make([]byte, attest.MaxBundleSize+1)
	if _, err := s.verify(t, oms.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := oms.Verify(context.Background(), s.dir, huge, keyOf(s), bundle.Options{}, oms.VerifyOptions{}); !errors.Is(err, bundle.ErrTooLarge) {
		t.Errorf("huge bundle: got %v, want ErrTooLarge", err)
	}
	if _, err := oms.Serialize(context.Background(), s.dir, oms.Options{MaxResources: 3}); !errors.Is(err, oms.ErrTooMany) {
		t.Errorf("4 files, limit 3: got %v, want ErrTooMany", err)
	}
	if _, err := oms.Serialize(context.Background(), s.dir, oms.Options{Method: oms.MethodShards, ShardSize: 1, MaxResources: 20}); !errors.Is(err, oms.ErrTooMany) {
		t.Errorf("shards of 1 byte, limit 20: got %v, want ErrTooMany", err)
	}
}

// TestSerializeCanceled: a canceled context stops serialization.
func TestSerializeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := oms.Serialize(ctx, newModel(t, "model", modelFiles), oms.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestSerializeOrder: resources sort by path component, as Python's
// PurePosixPath does ("a/b" before "a.txt"), then by shard offsets.
func TestSerializeOrder(t *testing.T) {
	dir := newModel(t, "model", map[string]string{"a.txt": "1", "a/b": "2", "a-b": "3", "B": "4", "é": "5"})
	m, err := oms.Serialize(context.Background(), dir, oms.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range m.Resources {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, " "), "B a/b a-b a.txt é"; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	if !strings.Contains(string(m.Payload()), `"name": "\u00e9"`) {
		t.Errorf("payload does not escape non-ASCII names as Python does:\n%s", m.Payload())
	}
}

func keyOf(s signed) bundle.Signer { return bundle.Signer{Key: s.key.Public()} }

// statementOf is the DSSE payload of a bundle.
func statementOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	var p []byte
	testsign.Edit(t, raw, func(m map[string]any) {
		p, _ = base64.StdEncoding.DecodeString(testsign.Envelope(m)["payload"].(string))
	})
	return p
}

// resign signs the statement JSON p with s's key.
func resign(t *testing.T, s signed, p string) []byte {
	t.Helper()
	return testsign.Payload(t, s.key, p, attest.PayloadType)
}

// firstResource is the first resource object of a compact statement.
func firstResource(st string) string {
	i := strings.Index(st, `"resources":[`) + len(`"resources":[`)
	j := strings.Index(st[i:], "}")
	return st[i : i+j+1]
}

// moveFirstResourceLast reorders a statement's resources: the same set,
// hashed in the new order into the subject, so only the order is wrong.
func moveFirstResourceLast(st string) string {
	first := firstResource(st)
	p := strings.Replace(st, first+",", "", 1)
	p = strings.Replace(p, "}]}}", "},"+first+"]}}", 1)
	var m oms.Manifest
	for _, part := range strings.Split(p[strings.Index(p, `"resources":[`):], `"digest":"`)[1:] {
		m.Resources = append(m.Resources, oms.Resource{Digest: part[:64]})
	}
	return replaceSubject(p, m.Digest())
}

// replaceSubject sets the subject digest of a compact statement.
func replaceSubject(st, digest string) string {
	i := strings.Index(st, `"sha256":"`) + len(`"sha256":"`)
	return st[:i] + digest + st[i+64:]
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
