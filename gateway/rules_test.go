package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startInProcess starts the gateway in this process (the test binary is
// not the pinned gateway, so --insecure-dev's waiver applies) and closes
// it at the end of the test.
func startInProcess(t *testing.T, d *deployment) (*Gateway, error) {
	t.Helper()
	opts := d.options()
	opts.InsecureDev = true
	g, err := Start(context.Background(), opts)
	if g != nil {
		t.Cleanup(g.Close)
	}
	return g, err
}

func wantRefusal(t *testing.T, err error, step, component, rule string) {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) || !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if r.Step != step || r.Component != component || !strings.Contains(r.Rule+" "+r.Error(), rule) {
		t.Fatalf("refusal %q: want step %s, component %s, rule %s", r.Error(), step, component, rule)
	}
}

// The policy's interpreter pin: a wrong digest refuses the Python plugin
// (naming the interpreter and both digests), the right one starts it.
func TestInterpreterPin(t *testing.T) {
	needPython(t)
	d := newDeployment(t)
	pin := "sha256:" + strings.Repeat("0", 64)
	d.edit = func(p map[string]any) {
		for _, c := range p["components"].([]any) {
			if m := c.(map[string]any); m["name"] == "pii-redactor" {
				m["interpreter"] = map[string]any{"digests": []any{pin}}
			}
		}
	}
	d.write()
	_, err := startInProcess(t, d)
	wantRefusal(t, err, StepVerify, "plugin/pii-redactor", "interpreter.digests")
	var r *Refusal
	if errors.As(err, &r); r.Expected != pin || !strings.Contains(r.Found, "/usr/bin/python3") {
		t.Errorf("refusal %+v does not name the pin and the interpreter found", r)
	}
	real, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Fatal(err)
	}
	pin = fileSum(t, real)
	d.version++ // the refused start accepted version 1 with the other pin
	d.write()
	g, err := startInProcess(t, d)
	if err != nil {
		t.Fatalf("the right interpreter pin was refused: %v", err)
	}
	if st := g.Status().component("plugin", "pii-redactor"); st.Interpreter == nil || st.Interpreter.Digest.String() != pin {
		t.Errorf("status interpreter %+v, want %s", st.Interpreter, pin)
	}
}

// A component in audit mode that fails its rule is logged and allowed.
func TestAuditModeAllows(t *testing.T) {
	d := newDeployment(t).withoutPython()
	d.edit = func(p map[string]any) {
		for _, c := range p["components"].([]any) {
			if m := c.(map[string]any); m["name"] == "guardrail" {
				m["mode"] = "audit"
			}
		}
	}
	d.write()
	d.bundles = nil // unsigned: the signers rule fails
	g, err := startInProcess(t, d)
	if err != nil {
		t.Fatalf("an audit-mode failure stopped the gateway: %v", err)
	}
	st := g.Status().component("plugin", "guardrail")
	if st.State != StateRunning {
		t.Errorf("the audited plugin does not run: %+v", st)
	}
	if st.Verified || !strings.Contains(st.Reason, "allowed in audit mode") || !strings.Contains(st.Reason, ".signers") {
		t.Errorf("the status must say the plugin runs unverified, in audit mode, and why: %+v", st)
	}
}

// The data folder holds the rollback state and the snapshots: one open to
// others is refused, and so is a link.
func TestDataDirMustBePrivate(t *testing.T) {
	d := newDeployment(t).withoutPython()
	d.write()
	if err := os.Mkdir(d.data, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := startInProcess(t, d)
	wantRefusal(t, err, StepConfig, "data folder "+d.data, "open to other users")
	if err := os.Remove(d.data); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), d.data); err != nil {
		t.Fatal(err)
	}
	_, err = startInProcess(t, d)
	wantRefusal(t, err, StepConfig, "data folder "+d.data, "not a folder")
}

// A folder runs only as `python3 -m MODULE`, and a file runs only itself:
// any other command would run something the policy did not check.
func TestCommandsTheGatewayWillNotRun(t *testing.T) {
	t.Run("folder started by a shell", func(t *testing.T) {
		needPython(t)
		d := newDeployment(t)
		for _, p := range d.manifest["plugins"].([]any) {
			if m := p.(map[string]any); m["name"] == "pii-redactor" {
				m["command"] = []any{"sh", "-c", "python3 -m pii_redactor"}
			}
		}
		d.write()
		_, err := startInProcess(t, d)
		wantRefusal(t, err, StepVerify, "plugin/pii-redactor", "unsupported command")
	})
	t.Run("file started by an interpreter", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		for _, p := range d.manifest["plugins"].([]any) {
			if m := p.(map[string]any); m["name"] == "guardrail" {
				m["command"] = []any{"/usr/bin/env", "guardrail"}
			}
		}
		d.write()
		_, err := startInProcess(t, d)
		wantRefusal(t, err, StepVerify, "plugin/guardrail", "unsupported command")
	})
	t.Run("plugin from an image", func(t *testing.T) {
		d := newDeployment(t).withoutPython()
		for _, p := range d.manifest["plugins"].([]any) {
			if m := p.(map[string]any); m["name"] == "guardrail" {
				delete(m, "path")
				m["image"] = "gateway-image"
			}
		}
		d.write()
		_, err := startInProcess(t, d)
		wantRefusal(t, err, StepConfig, "plugin/guardrail", "runs from")
	})
}
