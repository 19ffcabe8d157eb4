package admission_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/internal/admissiontest"
	"github.com/trustgate/trustgate/policy"
)

// reloads records what OnReload was told.
type reloads struct {
	mu   sync.Mutex
	errs []error
}

func (r *reloads) add(_ *policy.Policy, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *reloads) last() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return 0, nil
	}
	return len(r.errs), r.errs[len(r.errs)-1]
}

func TestPolicyReload(t *testing.T) {
	e := newEnv(t, admission.Config{})
	k := e.kit
	var seen reloads
	e.src.OnReload = seen.add
	img := e.pushSigned("trustgate/gateway:1.0")
	e.decide(t, pod(container(img.String())), true)

	// Version 2 drops the gateway entry: it takes effect.
	v2 := k.PolicyText(2, admissiontest.Components(`  - name: agent
    kind: image
    repositories: [`+k.Host+`/trustgate/agent]
    signers:
      anyOf: [release]
`), time.Time{})
	k.WritePolicy(v2, k.Release)
	if err := e.src.Reload(time.Now()); err != nil {
		t.Fatal(err)
	}
	if v := e.src.Current().Version; v != 2 {
		t.Fatalf("version %d in force, want 2", v)
	}
	e.decide(t, pod(container(img.String())), false, "repositories")

	// Each of these is refused, and version 2 stays in force.
	refused := []struct {
		name  string
		write func()
		want  error
	}{
		{"policy edited after signing", func() {
			k.WriteFiles(bytes.Replace(v2, []byte("trustgate/agent"), []byte("trustgate/gateway"), 1), k.PolicyBundle(v2, k.Release))
		}, policy.ErrTampered},
		{"signed by a key the trust root does not hold", func() {
			k.WritePolicy(k.PolicyText(3, k.DefaultComponents(), time.Time{}), k.Other)
		}, policy.ErrUntrustedSigner},
		{"an older version, validly signed", func() {
			k.WritePolicy(k.PolicyText(1, k.DefaultComponents(), time.Time{}), k.Release)
		}, policy.ErrRollback},
		{"version 2 again with other content", func() {
			k.WritePolicy(k.PolicyText(2, k.DefaultComponents(), time.Time{}), k.Release)
		}, policy.ErrRollback},
		{"expired", func() {
			k.WritePolicy(k.PolicyText(4, k.DefaultComponents(), time.Now().Add(-time.Hour)), k.Release)
		}, policy.ErrExpired},
		{"unsigned: the bundle is gone", func() {
			if err := os.Remove(k.PolicyPath() + ".bundle.json"); err != nil {
				t.Fatal(err)
			}
		}, policy.ErrUnsigned},
		{"for another deployment", func() {
			other := bytes.Replace(k.PolicyText(5, k.DefaultComponents(), time.Time{}), []byte("name: "+admissiontest.Deployment), []byte("name: staging"), 1)
			k.WritePolicy(other, k.Release)
		}, policy.ErrWrongDeployment},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			c.write()
			err := e.src.Reload(time.Now())
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("reload: %v, want %v", err, c.want)
			}
			if p := e.src.Current(); p.Version != 2 || p.Source().Digest.String() != admissiontest.Sum(v2) {
				t.Fatalf("in force: version %d %s, want version 2", p.Version, p.Source().Digest)
			}
			if _, last := seen.last(); last == nil {
				t.Fatal("OnReload was not told of the refusal")
			}
			e.decide(t, pod(container(img.String())), false, "repositories")
		})
	}

	// A refused policy left in place is verified, logged and counted once.
	n, _ := seen.last()
	for range 3 {
		if err := e.src.Reload(time.Now()); err != nil {
			t.Fatalf("the same refused files again: %v", err)
		}
	}
	if m, _ := seen.last(); m != n {
		t.Fatalf("the same refused files were reported %d more times", m-n)
	}

	// A restart does not forget: the state file refuses version 1.
	k.WritePolicy(k.PolicyText(1, k.DefaultComponents(), time.Time{}), k.Release)
	fresh := &admission.PolicySource{Path: k.PolicyPath(), Deployment: admissiontest.Deployment, Trust: k.Trust(), StatePath: k.StatePath()}
	if err := fresh.Load(time.Now()); !errors.Is(err, policy.ErrRollback) {
		t.Fatalf("a restart loaded version 1 after version 2: %v", err)
	}
}

func TestPolicyWatchTakesEffect(t *testing.T) {
	e := newEnv(t, admission.Config{})
	k := e.kit
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); e.src.Watch(ctx, time.Hour) }() // only the file events
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // the watch is set up
	k.WritePolicy(k.PolicyText(7, k.DefaultComponents(), time.Time{}), k.Release)
	for deadline := time.Now().Add(20 * time.Second); e.src.Current().Version != 7; {
		if time.Now().After(deadline) {
			t.Fatalf("version %d in force 20 s after version 7 was written", e.src.Current().Version)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPolicySourceRefusesAtStart(t *testing.T) {
	k := admissiontest.New(t, nil)
	k.WritePolicy(k.PolicyText(1, k.DefaultComponents(), time.Time{}), k.Other)
	src := &admission.PolicySource{Path: k.PolicyPath(), Deployment: admissiontest.Deployment, Trust: k.Trust(), StatePath: k.StatePath()}
	if err := src.Load(time.Now()); err == nil || src.Current() != nil {
		t.Fatalf("a policy signed by an untrusted key loaded: %v", err)
	}
}
