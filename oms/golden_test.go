package oms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/oms"
)

// upstream is where the files copied from sigstore/model-transparency are
// (see its NOTICE).
const upstream = "../testdata/model-transparency"

// knownModelText is the reference's KNOWN_MODEL_TEXT (tests/test_support.py).
const knownModelText = "This is a simple model"

// referenceModels builds the sample models of the reference's
// tests/conftest.py, by fixture name: the same names, contents and sizes.
// Each returns the model's path.
var referenceModels = map[string]func(t *testing.T) string{
	"sample_model_file": func(t *testing.T) string {
		return writeFile(t, filepath.Join(t.TempDir(), "file_model"), knownModelText)
	},
	"empty_model_file": func(t *testing.T) string {
		return writeFile(t, filepath.Join(t.TempDir(), "empty_file_model"), "")
	},
	"sample_model_folder": func(t *testing.T) string {
		root := filepath.Join(t.TempDir(), "sample_model")
		for i := range 2 {
			for j := range 3 {
				writeFile(t, filepath.Join(root, fmt.Sprintf("d%d", i), fmt.Sprintf("f%d%d", i, j)), fmt.Sprintf("This is file f%d%d in d%d.", i, j, i))
			}
		}
		for i := range 4 {
			writeFile(t, filepath.Join(root, fmt.Sprintf("f%d", i)), fmt.Sprintf("This is file f%d in root.", i))
		}
		return root
	},
	"empty_model_folder": func(t *testing.T) string {
		root := filepath.Join(t.TempDir(), "empty_folder_model")
		mkdir(t, root)
		return root
	},
	"model_folder_with_empty_file": func(t *testing.T) string {
		root := filepath.Join(t.TempDir(), "empty_file_inside_model")
		writeFile(t, filepath.Join(root, "empty_file"), "")
		return root
	},
	"deep_model_folder": func(t *testing.T) string {
		root := filepath.Join(t.TempDir(), "deep_model")
		deep := filepath.Join(root, "d0", "d1", "d2", "d3", "d4")
		for i := range 4 {
			writeFile(t, filepath.Join(deep, fmt.Sprintf("f%d", i)), fmt.Sprintf("This is file f%d.", i))
		}
		return root
	},
	// The reference links symlink_file to a file outside the model, which
	// oms refuses however symbolic links are allowed
	// (TestReferenceSymlinkRefused). Here the target is inside the model,
	// under a path that symlinkIgnore leaves out, so the manifest is the
	// reference's.
	"symlink_model_folder": func(t *testing.T) string {
		root := filepath.Join(t.TempDir(), "symlink_model")
		writeFile(t, filepath.Join(root, symlinkIgnore, "file"), knownModelText)
		symlink(t, symlinkIgnore+"/file", filepath.Join(root, "symlink_file"))
		return root
	},
}

// symlinkIgnore holds the target of symlink_model_folder's link.
const symlinkIgnore = "external"

// referenceOptions are the options the reference's golden tests serialize
// with (allow_symlinks=True; shards of 1 GB or of 8 bytes).
func referenceOptions(model, method string, shardSize int64) oms.Options {
	o := oms.Options{Method: method, ShardSize: shardSize, AllowSymlinks: true}
	if model == "symlink_model_folder" {
		o.IgnorePaths = []string{symlinkIgnore}
	}
	return o
}

// serializeReference serializes one reference model as its golden tests
// do. For symlink_model_folder it forgets the ignore path that hides the
// link's target, which the reference's fixture keeps outside the model.
func serializeReference(t *testing.T, model, method string, shardSize int64) *oms.Manifest {
	t.Helper()
	m, err := oms.Serialize(context.Background(), referenceModels[model](t), referenceOptions(model, method, shardSize))
	if err != nil {
		t.Fatal(err)
	}
	m.Serialization.IgnorePaths = nil
	return m
}

// goldenModels are the reference's test_support.all_test_models.
var goldenModels = []string{
	"sample_model_file", "sample_model_folder", "deep_model_folder", "empty_model_file",
	"empty_model_folder", "model_folder_with_empty_file", "symlink_model_folder",
}

// TestGoldenManifests: the manifests of the reference models, byte for
// byte as the reference's serializer tests write them ("name:digest"
// lines, tests/_serialization/testdata), for files, shards of 1 GB and
// shards of 8 bytes.
func TestGoldenManifests(t *testing.T) {
	for _, c := range []struct {
		dir, suffix, method string
		shardSize           int64
	}{
		{"file", "", oms.MethodFiles, 0},
		{"file_shard", "", oms.MethodShards, 0},
		{"file_shard", "_small_shards", oms.MethodShards, 8},
	} {
		for _, model := range goldenModels {
			t.Run(c.dir+"/"+model+c.suffix, func(t *testing.T) {
				m := serializeReference(t, model, c.method, c.shardSize)
				golden := readFile(t, filepath.Join(upstream, "tests/_serialization/testdata", c.dir, "TestSerializer", model+c.suffix))
				if got := manifestLines(m); !bytes.Equal(got, golden) {
					t.Errorf("manifest differs from the golden\ngot:\n%s\nwant:\n%s", got, golden)
				}
			})
		}
	}
}

// manifestLines writes a manifest as the reference's serializer goldens
// do: files sorted by name as strings, shards in manifest order.
func manifestLines(m *oms.Manifest) []byte {
	rs := slices.Clone(m.Resources)
	if m.Serialization.Method == oms.MethodFiles {
		slices.SortFunc(rs, func(a, b oms.Resource) int { return strings.Compare(a.Name, b.Name) })
	}
	var b bytes.Buffer
	for _, r := range rs {
		fmt.Fprintf(&b, "%s:%s\n", r.Name, r.Digest)
	}
	return b.Bytes()
}

// TestGoldenPayloads: the signed payloads (in-toto statements) of the
// reference models, byte for byte as the reference's golden files
// (tests/_signing/testdata/signing/TestPayload), which its test writes as
// MessageToJson and a newline. The reference compares them as protobuf
// messages; these are compared as bytes, which is stricter.
func TestGoldenPayloads(t *testing.T) {
	for _, c := range []struct {
		suffix, method string
		shardSize      int64
	}{
		{"", oms.MethodFiles, 0},
		{"_shard", oms.MethodShards, 0},
		{"_small_shards", oms.MethodShards, 8},
	} {
		for _, model := range goldenModels {
			t.Run(model+c.suffix, func(t *testing.T) {
				m := serializeReference(t, model, c.method, c.shardSize)
				golden := readFile(t, filepath.Join(upstream, "tests/_signing/testdata/signing/TestPayload", model+c.suffix))
				if got := append(m.Payload(), '\n'); !bytes.Equal(got, golden) {
					t.Errorf("payload differs from the golden\ngot:\n%s\nwant:\n%s", got, golden)
				}
				// The statement trustgate signs is the same document.
				st, err := m.Statement()
				if err != nil {
					t.Fatal(err)
				}
				if !jsonEqual(t, st.Predicate, predicateOf(t, golden)) {
					t.Errorf("statement predicate %s differs from the golden's", st.Predicate)
				}
			})
		}
	}
}

// TestReferenceSymlinkRefused: the reference's symlink_model_folder links
// to a file outside the model, absolutely; oms refuses it even with
// symbolic links allowed, and without them refuses any link.
func TestReferenceSymlinkRefused(t *testing.T) {
	outside := writeFile(t, filepath.Join(t.TempDir(), "external", "file"), knownModelText)
	root := filepath.Join(t.TempDir(), "symlink_model")
	mkdir(t, root)
	symlink(t, outside, filepath.Join(root, "symlink_file"))
	for _, allow := range []bool{true, false} {
		_, err := oms.Serialize(context.Background(), root, oms.Options{AllowSymlinks: allow})
		if !errors.Is(err, oms.ErrSymlink) {
			t.Errorf("allow_symlinks=%v: got %v, want ErrSymlink", allow, err)
		}
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
