package admission_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/internal/admissiontest"
	"github.com/trustgate/trustgate/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// env is a registry with images, a signed policy naming them, and a
// checker answering from it.
type env struct {
	kit     *admissiontest.Kit
	src     *admission.PolicySource
	checker *admission.Checker
	// requests counts registry requests.
	requests atomic.Int64
}

func newEnv(t *testing.T, cfg admission.Config) *env {
	t.Helper()
	e := &env{}
	e.kit = admissiontest.New(t, func(*http.Request) { e.requests.Add(1) })
	e.kit.WritePolicy(e.kit.PolicyText(1, e.kit.DefaultComponents(), time.Time{}), e.kit.Release)
	e.src = &admission.PolicySource{Path: e.kit.PolicyPath(), Deployment: admissiontest.Deployment, Trust: e.kit.Trust(), StatePath: e.kit.StatePath()}
	if err := e.src.Load(time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg.Policy = e.src
	c, err := admission.NewChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.checker = c
	return e
}

// pushSigned pushes a new image as repoTag (under the kit's host) and
// signs it with the release key, which the kit's policy trusts.
func (e *env) pushSigned(repoTag string) name.Digest {
	img := e.kit.Push(repoTag)
	e.kit.Sign(img, e.kit.Release)
	return img
}

// images are what the verdict tests judge, each a new image under a
// repository the kit's policy names.
type images struct {
	signed      name.Digest // signed by release
	unsigned    name.Digest // no attestation
	wrongSigner name.Digest // signed by a key the policy does not trust
	tampered    name.Digest // its attestation changed after signing
	plugin      name.Digest // under trustgate/plugins/**, signed by release
	agent       name.Digest // the audit-mode agent, unsigned
}

// pushImages pushes a new set of images.
func (e *env) pushImages() images {
	k := e.kit
	im := images{
		signed:      e.pushSigned("trustgate/gateway:1.0"),
		unsigned:    k.Push("trustgate/gateway:unsigned"),
		wrongSigner: k.Push("trustgate/gateway:other"),
		tampered:    k.Push("trustgate/gateway:tampered"),
		plugin:      e.pushSigned("trustgate/plugins/guard/v2:1.0"),
		agent:       k.Push("trustgate/agent:1.0"),
	}
	k.Sign(im.wrongSigner, k.Other)
	k.AttachTampered(im.tampered)
	return im
}

func pod(uses ...admission.ImageUse) *admission.Workload {
	return &admission.Workload{Kind: "Pod", Namespace: "apps", Name: "p", Images: uses}
}

func container(image string) admission.ImageUse {
	return admission.ImageUse{Container: "containers[app]", Image: image}
}

// decide checks one workload and returns the decision, failing the test
// when the verdict is not want or the message or warnings lack a part.
func (e *env) decide(t *testing.T, w *admission.Workload, want bool, parts ...string) admission.Decision {
	t.Helper()
	d := e.checker.Check(context.Background(), w)
	text := d.Message + " | " + strings.Join(d.Warnings, " | ")
	if d.Allowed != want {
		t.Fatalf("allowed = %v, want %v: %s", d.Allowed, want, text)
	}
	for _, p := range parts {
		if !strings.Contains(text, p) {
			t.Fatalf("the answer lacks %q: %s", p, text)
		}
	}
	return d
}

func TestCheckerVerdicts(t *testing.T) {
	e := newEnv(t, admission.Config{})
	k := e.kit
	im := e.pushImages()

	t.Run("signed", func(t *testing.T) {
		d := e.decide(t, pod(container(im.signed.String())), true)
		if len(d.Warnings) != 0 || d.Images[0].Digest != im.signed.DigestStr() {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("signed plugin under a ** repository", func(t *testing.T) {
		e.decide(t, pod(container(im.plugin.String())), true)
	})
	t.Run("tag and digest: the digest is what runs", func(t *testing.T) {
		e.decide(t, pod(container(k.Host+"/trustgate/gateway:1.0@"+im.signed.DigestStr())), true)
	})
	t.Run("unsigned", func(t *testing.T) {
		e.decide(t, pod(container(im.unsigned.String())), false, "containers[app] "+im.unsigned.String(), "components[0].signers", "no trusted signature")
	})
	t.Run("wrong signer", func(t *testing.T) {
		e.decide(t, pod(container(im.wrongSigner.String())), false, "components[0].signers", "1 of 1 attestations beside it did not verify", "signer")
	})
	t.Run("tampered attestation", func(t *testing.T) {
		e.decide(t, pod(container(im.tampered.String())), false, "components[0].signers", "1 of 1 attestations beside it did not verify", "signature")
	})
	t.Run("unknown repository, decided without the registry", func(t *testing.T) {
		before := e.requests.Load()
		e.decide(t, pod(container(k.Host+"/elsewhere/tool@"+im.signed.DigestStr())), false, "repositories")
		e.decide(t, pod(container("169.254.169.254/latest/meta-data:x")), false, "repositories")
		if n := e.requests.Load() - before; n != 0 {
			t.Fatalf("%d registry requests for images the policy does not name", n)
		}
	})
	t.Run("an unsigned init container spoils a signed pod", func(t *testing.T) {
		w := pod(admission.ImageUse{Container: "initContainers[setup]", Image: im.unsigned.String()}, container(im.signed.String()))
		d := e.decide(t, w, false, "initContainers[setup] "+im.unsigned.String())
		if strings.Contains(d.Message, "containers[app]") {
			t.Fatalf("the signed container is named as denied: %s", d.Message)
		}
	})
	t.Run("an unsigned ephemeral container", func(t *testing.T) {
		e.decide(t, pod(container(im.signed.String()), admission.ImageUse{Container: "ephemeralContainers[debug]", Image: im.unsigned.String()}), false, "ephemeralContainers[debug]")
	})
	t.Run("audit mode admits with a warning", func(t *testing.T) {
		e.decide(t, pod(container(im.agent.String())), true, "admitted in audit mode", "components[2].signers")
	})
	t.Run("a tag alone is denied, naming its digest", func(t *testing.T) {
		for range 2 { // the second from the cache
			e.decide(t, pod(container(k.Host+"/trustgate/gateway:1.0")), false, "ref:", "pinned by digest", "the tag names "+im.signed.DigestStr())
		}
	})
	t.Run("not a reference", func(t *testing.T) {
		e.decide(t, pod(container("UPPER/Case::x")), false, "not an image reference")
	})
}

func TestCheckerTags(t *testing.T) {
	e := newEnv(t, admission.Config{AllowTags: true})
	k := e.kit
	signed := e.pushSigned("trustgate/gateway:1.0")
	e.decide(t, pod(container(k.Host+"/trustgate/gateway:1.0")), true, "admitted by tag", signed.DigestStr())
	// No tag is :latest, as the kubelet reads it.
	latest := e.pushSigned("trustgate/gateway:latest")
	e.decide(t, pod(container(k.Host+"/trustgate/gateway")), true, "admitted by tag", latest.DigestStr())
	// The tag moves to other bytes after signing: what it names now is
	// verified, and has no signature.
	moved := k.Push("trustgate/gateway:1.0")
	e.decide(t, pod(container(k.Host+"/trustgate/gateway:1.0")), false, "components[0].signers", "the tag names "+moved.DigestStr())
	if moved.DigestStr() == signed.DigestStr() {
		t.Fatal("the tag did not move")
	}
}

func TestCheckerCacheAndSingleflight(t *testing.T) {
	e := newEnv(t, admission.Config{})
	k := e.kit
	signed := e.pushSigned("trustgate/gateway:1.0")
	k.Slow(200 * time.Millisecond) // so that the reviews overlap
	before := e.requests.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d := e.checker.Check(context.Background(), pod(container(signed.String()))); !d.Allowed {
				t.Errorf("denied: %s", d.Message)
			}
		}()
	}
	wg.Wait()
	k.Slow(0)
	one := e.requests.Load() - before
	// Reading one image's attestations takes a handful of requests
	// (referrers, each referrer manifest and layer, the cosign tags .att
	// and .sig).
	if one == 0 || one > 9 {
		t.Fatalf("20 concurrent reviews of one image made %d registry requests, want those of one verification", one)
	}
	before = e.requests.Load()
	d := e.checker.Check(context.Background(), pod(container(signed.String())))
	if !d.Allowed || !d.Images[0].Cached || e.requests.Load() != before {
		t.Fatalf("second review: cached=%v, %d requests", d.Images[0].Cached, e.requests.Load()-before)
	}
	// A new policy is a new cache: nothing decided under the old one is
	// reused.
	k.WritePolicy(k.PolicyText(2, k.DefaultComponents(), time.Time{}), k.Release)
	if err := e.src.Reload(time.Now()); err != nil {
		t.Fatal(err)
	}
	d = e.checker.Check(context.Background(), pod(container(signed.String())))
	if !d.Allowed || d.Images[0].Cached || e.requests.Load() == before {
		t.Fatalf("after a new policy: cached=%v", d.Images[0].Cached)
	}
}

func TestCheckerRegistryFailures(t *testing.T) {
	t.Run("slow registry: denied within the deadline", func(t *testing.T) {
		e := newEnv(t, admission.Config{Deadline: 300 * time.Millisecond})
		img := e.pushSigned("trustgate/gateway:1.0")
		e.kit.Slow(time.Minute)
		start := time.Now()
		e.decide(t, pod(container(img.String())), false, "not verified", "deadline exceeded")
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("answered after %s", took)
		}
	})
	t.Run("registry down: denied", func(t *testing.T) {
		e := newEnv(t, admission.Config{})
		img := e.pushSigned("trustgate/gateway:1.0")
		e.kit.Stop()
		e.decide(t, pod(container(img.String())), false, "not verified")
	})
	t.Run("registry down, configured to admit: a warning", func(t *testing.T) {
		e := newEnv(t, admission.Config{OnRegistryError: admission.RegistryErrorAdmit})
		img := e.kit.Push("trustgate/gateway:1.0")
		e.kit.Stop()
		e.decide(t, pod(container(img.String())), true, "admitted unverified")
	})
	t.Run("a registry error is not cached", func(t *testing.T) {
		e := newEnv(t, admission.Config{Deadline: 300 * time.Millisecond})
		img := e.pushSigned("trustgate/gateway:1.0")
		e.kit.Slow(time.Minute)
		e.decide(t, pod(container(img.String())), false, "deadline exceeded")
		e.kit.Slow(0)
		// A review that joins the failing verification still in flight
		// shares its error; once it is over, the next one verifies anew.
		for deadline := time.Now().Add(10 * time.Second); ; {
			d := e.checker.Check(context.Background(), pod(container(img.String())))
			if d.Allowed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still denied once the registry answers: %s", d.Message)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestNewCheckerRefusesBadConfig(t *testing.T) {
	if _, err := admission.NewChecker(admission.Config{}); err == nil {
		t.Fatal("no policy source: accepted")
	}
	if _, err := admission.NewChecker(admission.Config{Policy: &admission.PolicySource{}, OnRegistryError: "maybe"}); err == nil {
		t.Fatal("on-registry-error maybe: accepted")
	}
}

func TestCheckerPolicyExpiresInForce(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	e := newEnv(t, admission.Config{Now: func() time.Time { return time.Unix(0, now.Load()) }})
	img := e.pushSigned("trustgate/gateway:1.0")
	e.decide(t, pod(container(img.String())), true)
	// The verdict is cached; a year and a day later the policy has expired,
	// and the cached allow is not used.
	now.Store(time.Now().Add(366 * 24 * time.Hour).UnixNano())
	d := e.decide(t, pod(container(img.String())), false, "expires")
	if d.Images[0].Cached {
		t.Fatal("answered from the cache under an expired policy")
	}
}

func TestCheckerManyContainers(t *testing.T) {
	e := newEnv(t, admission.Config{})
	k := e.kit
	signed := e.pushSigned("trustgate/gateway:1.0")
	var uses []admission.ImageUse
	for i := range 1000 {
		uses = append(uses, admission.ImageUse{Container: "containers[c" + string(rune('a'+i%26)) + "]", Image: signed.String()})
	}
	before := e.requests.Load()
	d := e.decide(t, pod(uses...), true)
	// One image's worth of requests (see TestCheckerCacheAndSingleflight).
	if len(d.Images) != 1000 || d.Images[999].Digest != signed.DigestStr() || e.requests.Load()-before > 9 {
		t.Fatalf("1000 containers of one image: %d verdicts, %d registry requests", len(d.Images), e.requests.Load()-before)
	}
	uses = nil
	for i := range admission.MaxImages + 1 {
		uses = append(uses, container(k.Host+"/trustgate/gateway@sha256:"+strings.Repeat("0", 60)+fmt.Sprintf("%04d", i)))
	}
	e.decide(t, pod(uses...), false, "distinct images, more than")
}
