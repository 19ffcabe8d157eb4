package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/buildinfo"
	"github.com/trustgate/trustgate/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestSBOMRejectsBadManifests: every bad manifest gives exit 2 and one line
// on stderr that names the file, the line and the field.
func TestSBOMRejectsBadManifests(t *testing.T) {
	for _, c := range testutil.BadStacks(t) {
		t.Run(c.Name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "sbom.json")
			code, stdout, stderr := run(t, "sbom", "--stack", c.File, "-o", out)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d", code, cli.ExitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if n := strings.Count(stderr, "\n"); n != 1 {
				t.Errorf("stderr has %d lines, want 1: %q", n, stderr)
			}
			want := c.File + ":"
			if c.Line > 0 {
				want += strconv.Itoa(c.Line) + ":"
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr %q does not name %s", stderr, want)
			}
			if c.Field != "" && !strings.Contains(stderr, " "+c.Field+": ") {
				t.Errorf("stderr %q does not name the field %s", stderr, c.Field)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("an output file was written for a bad manifest")
			}
		})
	}
}

func TestSBOMUsageErrors(t *testing.T) {
	manifest := testutil.Example(t)
	tests := []struct {
		name string
		args []string
		want string
		env  map[string]string
	}{
		{"no stack", []string{"sbom"}, `required flag(s) "stack" not set`, nil},
		{"missing stack file", []string{"sbom", "--stack", "/nonexistent/stack.yaml"}, "no such file", nil},
		{"bad spec version", []string{"sbom", "--stack", manifest, "--spec-version", "1.2"}, "--spec-version", nil},
		{"bad timestamp", []string{"sbom", "--stack", manifest, "--timestamp", "yesterday"}, "--timestamp", nil},
		{"bad SOURCE_DATE_EPOCH", []string{"sbom", "--stack", manifest}, "SOURCE_DATE_EPOCH", map[string]string{"SOURCE_DATE_EPOCH": "soon"}},
		{"unknown flag", []string{"sbom", "--stak", manifest}, "unknown flag", nil},
		{"output folder missing", []string{"sbom", "--stack", manifest, "-q", "-o", "/nonexistent/dir/sbom.json"}, "/nonexistent/dir/sbom.json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, _, stderr := run(t, tt.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, tt.want)
			}
		})
	}
}

func TestSBOMWritesFileAndStdout(t *testing.T) {
	manifest := testutil.Example(t)
	out := filepath.Join(t.TempDir(), "sbom.cdx.json")
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01
	code, stdout, stderr := run(t, "sbom", "--stack", manifest, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "" || stderr != "" {
		t.Errorf("stdout %q stderr %q: want both empty (not a terminal)", stdout, stderr)
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(file, []byte(`"timestamp": "2026-01-01T00:00:00Z"`)) {
		t.Error("SOURCE_DATE_EPOCH was not used as the timestamp")
	}
	code, stdout, _ = run(t, "sbom", "--stack", manifest, "--spec-version", "1.6")
	if code != 0 || stdout != string(file) {
		t.Errorf("stdout differs from the file written for the same input (exit %d)", code)
	}
}

// TestBinaryExitCode runs the real binary once, so that main's exit code
// and streams are what a shell sees.
func TestBinaryExitCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trustgate binary")
	}
	bin := filepath.Join(t.TempDir(), "trustgate")
	// -buildvcs=true: Go's default stamps the commit, but GOFLAGS may
	// turn it off (this workplace's machines do).
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "github.com/trustgate/trustgate/cmd/trustgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bad := testutil.BadStacks(t)[0]
	cmd := exec.Command(bin, "sbom", "--stack", bad.File)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != cli.ExitUsage {
		t.Fatalf("err = %v, want exit status 2", err)
	}
	if !strings.HasPrefix(stderr.String(), "trustgate: "+bad.File+":") {
		t.Errorf("stderr = %q", stderr.String())
	}

	// trustgate version: the commit of the checkout it was built in, and
	// the libraries its verdicts rest on.
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info buildinfo.Info
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if head, err := exec.Command("git", "-C", testutil.RepoRoot(t), "rev-parse", "HEAD").Output(); err == nil && info.Commit != strings.TrimSpace(string(head)) {
		t.Errorf("version says commit %q, the checkout is at %s", info.Commit, head)
	}
	if info.Libraries["github.com/sigstore/sigstore-go"] != "v1.3.0" || info.Libraries["github.com/anchore/syft"] == "" || info.Libraries["github.com/CycloneDX/cyclonedx-go"] == "" {
		t.Errorf("libraries: %v", info.Libraries)
	}
	if short, _ := exec.Command(bin, "--version").Output(); !strings.HasPrefix(string(short), "trustgate version ") {
		t.Errorf("--version: %q", short)
	}
}

func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, stdout, stderr := run(t, "demo", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkDemo(t, dir, stdout, true)
}
