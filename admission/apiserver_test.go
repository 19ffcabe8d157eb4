package admission_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/internal/kubetest"
	"github.com/trustgate/trustgate/internal/testcert"
	"github.com/trustgate/trustgate/internal/testutil"
)

// webhookWait bounds how long the test waits for the API server to call
// the webhook once its configuration is created.
const webhookWait = 60 * time.Second

// The namespace the workloads are created in.
const appsNS = "apps"

// TestAdmissionBehindRealAPIServer registers the webhook, as
// deploy/webhook.yaml configures it, with a real kube-apiserver and sends
// it workloads through the API server, as kubectl would: what the client
// gets back (the object created, or the API server's error carrying the
// webhook's reason, and its warnings) is what is checked.
func TestAdmissionBehindRealAPIServer(t *testing.T) {
	cluster := kubetest.Start(t) // skips when the binaries are not built
	e := newEnv(t, admission.Config{AllowTags: true})
	k := e.kit
	url, caPEM, webhookLog := serveWebhook(t, e)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("webhook log:\n%s", webhookLog.String())
		}
	})
	registerWebhook(t, cluster.Client, url, caPEM)

	warns := &warningRecorder{}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.WarningHandler = warns
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	im := e.pushImages()

	waitForWebhook(t, c, im.unsigned.String())
	pods := c.CoreV1().Pods(appsNS)

	t.Run("signed pod by digest is admitted", func(t *testing.T) {
		warns.take()
		got, err := pods.Create(ctx, newPod("signed", podContainer("app", im.signed.String())), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("denied: %v", err)
		}
		if got.UID == "" || got.Spec.Containers[0].Image != im.signed.String() {
			t.Fatalf("created %+v", got.ObjectMeta)
		}
		if w := warns.take(); len(w) != 0 {
			t.Fatalf("warnings for a signed image: %q", w)
		}
	})
	t.Run("deployments", func(t *testing.T) {
		deployments := c.AppsV1().Deployments(appsNS)
		if _, err := deployments.Create(ctx, newDeployment("signed", im.signed.String()), metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed deployment denied: %v", err)
		}
		_, err := deployments.Create(ctx, newDeployment("unsigned", im.unsigned.String()), metav1.CreateOptions{})
		wantDenied(t, err, "Deployment unsigned", "containers[app] "+im.unsigned.String(), "components[0].signers")
		wantAbsent(t, func() error { _, err := deployments.Get(ctx, "unsigned", metav1.GetOptions{}); return err })
	})
	t.Run("unsigned image is denied", func(t *testing.T) {
		_, err := pods.Create(ctx, newPod("unsigned", podContainer("app", im.unsigned.String())), metav1.CreateOptions{})
		wantDenied(t, err, "Pod unsigned", "containers[app] "+im.unsigned.String(), "components[0].signers", "no trusted signature")
		wantAbsent(t, func() error { _, err := pods.Get(ctx, "unsigned", metav1.GetOptions{}); return err })
	})
	t.Run("wrong signer is denied", func(t *testing.T) {
		_, err := pods.Create(ctx, newPod("wrong-signer", podContainer("app", im.wrongSigner.String())), metav1.CreateOptions{})
		wantDenied(t, err, "containers[app] "+im.wrongSigner.String(), "components[0].signers")
	})
	t.Run("tampered attestation is denied", func(t *testing.T) {
		_, err := pods.Create(ctx, newPod("tampered", podContainer("app", im.tampered.String())), metav1.CreateOptions{})
		wantDenied(t, err, "containers[app] "+im.tampered.String(), "components[0].signers")
	})
	t.Run("a tag moved after signing", func(t *testing.T) {
		first := e.pushSigned("trustgate/gateway:v1")
		tag := k.Host + "/trustgate/gateway:v1"
		warns.take()
		if _, err := pods.Create(ctx, newPod("by-tag", podContainer("app", tag)), metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed tag denied: %v", err)
		}
		wantWarning(t, warns.take(), "containers[app] "+tag, "admitted by tag", first.DigestStr())
		moved := k.Push("trustgate/gateway:v1")
		if moved.DigestStr() == first.DigestStr() {
			t.Fatal("the tag did not move")
		}
		_, err := pods.Create(ctx, newPod("by-tag-moved", podContainer("app", tag)), metav1.CreateOptions{})
		wantDenied(t, err, "containers[app] "+tag, "components[0].signers")
	})
	t.Run("repository the policy does not name is denied", func(t *testing.T) {
		img := k.Host + "/elsewhere/tool@" + im.signed.DigestStr()
		_, err := pods.Create(ctx, newPod("elsewhere", podContainer("app", img)), metav1.CreateOptions{})
		wantDenied(t, err, "containers[app] "+img, "repositories")
	})
	t.Run("unsigned init container in a signed pod is denied", func(t *testing.T) {
		p := newPod("init", podContainer("app", im.signed.String()))
		p.Spec.InitContainers = []corev1.Container{podContainer("setup", im.unsigned.String())}
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		msg := wantDenied(t, err, "initContainers[setup] "+im.unsigned.String(), "components[0].signers")
		if strings.Contains(msg, "containers[app]") {
			t.Fatalf("the signed container is named as denied: %s", msg)
		}
	})
	t.Run("unsigned init container in a cronjob is denied", func(t *testing.T) {
		cj := newCronJob("nightly", im.signed.String())
		spec := &cj.Spec.JobTemplate.Spec.Template.Spec
		spec.InitContainers = []corev1.Container{podContainer("setup", im.unsigned.String())}
		_, err := c.BatchV1().CronJobs(appsNS).Create(ctx, cj, metav1.CreateOptions{})
		wantDenied(t, err, "CronJob nightly", "initContainers[setup] "+im.unsigned.String())
		if _, err := c.BatchV1().CronJobs(appsNS).Create(ctx, newCronJob("nightly", im.signed.String()), metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed cronjob denied: %v", err)
		}
	})
	t.Run("ephemeral containers", func(t *testing.T) {
		if _, err := pods.Create(ctx, newPod("debugged", podContainer("app", im.signed.String())), metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed pod denied: %v", err)
		}
		_, err := addEphemeral(ctx, pods, "debugged", "debug", im.unsigned.String())
		wantDenied(t, err, "ephemeralContainers[debug] "+im.unsigned.String(), "components[0].signers")
		got, err := addEphemeral(ctx, pods, "debugged", "debug", im.signed.String())
		if err != nil {
			t.Fatalf("signed ephemeral container denied: %v", err)
		}
		if n := len(got.Spec.EphemeralContainers); n != 1 || got.Spec.EphemeralContainers[0].Image != im.signed.String() {
			t.Fatalf("ephemeral containers after the update: %+v", got.Spec.EphemeralContainers)
		}
	})
	t.Run("dry run gets the same answer", func(t *testing.T) {
		dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		_, err := pods.Create(ctx, newPod("dry-unsigned", podContainer("app", im.unsigned.String())), dry)
		wantDenied(t, err, "Pod dry-unsigned", "containers[app] "+im.unsigned.String(), "components[0].signers", "no trusted signature")
		if _, err := pods.Create(ctx, newPod("dry-signed", podContainer("app", im.signed.String())), dry); err != nil {
			t.Fatalf("signed dry run denied: %v", err)
		}
		wantAbsent(t, func() error { _, err := pods.Get(ctx, "dry-signed", metav1.GetOptions{}); return err })
	})
	t.Run("audit mode admits with a warning", func(t *testing.T) {
		warns.take()
		if _, err := pods.Create(ctx, newPod("agent", podContainer("app", im.agent.String())), metav1.CreateOptions{}); err != nil {
			t.Fatalf("audit-mode image denied: %v", err)
		}
		wantWarning(t, warns.take(), "containers[app] "+im.agent.String(), "admitted in audit mode", "components[2].signers")
	})
	t.Run("kube-system is not sent to the webhook", func(t *testing.T) {
		// deploy/webhook.yaml leaves the cluster's own namespace out.
		waitFor(t, "namespace kube-system", func() error {
			_, err := c.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
			return err
		})
		if _, err := c.CoreV1().Pods("kube-system").Create(ctx, newPod("unsigned", podContainer("app", im.unsigned.String())), metav1.CreateOptions{}); err != nil {
			t.Fatalf("denied in kube-system: %v", err)
		}
	})
}

// serveWebhook serves the checker's webhook over TLS on 127.0.0.1 until
// the test ends, with a certificate of a CA made for the test. It returns
// the /validate URL, the CA (for caBundle) and the webhook's log.
func serveWebhook(t *testing.T, e *env) (url string, caPEM []byte, log *testutil.SyncBuffer) {
	t.Helper()
	ca := testcert.NewCA(t)
	certFile, keyFile := ca.Issue(t, t.TempDir(), "webhook")
	kp := &admission.KeyPair{CertFile: certFile, KeyFile: keyFile}
	if err := kp.Load(); err != nil {
		t.Fatal(err)
	}
	log = &testutil.SyncBuffer{}
	h := &admission.Handler{
		Checker: e.checker,
		Metrics: admission.NewMetrics(e.src),
		Log:     slog.New(slog.NewTextHandler(log, nil)),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admission.Serve(ctx, ln, h, kp, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serving the webhook: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("the webhook did not shut down")
		}
	})
	return "https://" + ln.Addr().String() + "/validate", ca.PEM(), log
}

// registerWebhook creates deploy/webhook.yaml's configuration, pointed at
// url instead of the in-cluster Service and trusting caPEM.
func registerWebhook(t *testing.T, c kubernetes.Interface, url string, caPEM []byte) {
	t.Helper()
	raw, err := os.ReadFile("deploy/webhook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := sigsyaml.UnmarshalStrict(raw, &cfg); err != nil {
		t.Fatalf("deploy/webhook.yaml: %v", err)
	}
	if len(cfg.Webhooks) != 1 {
		t.Fatalf("deploy/webhook.yaml has %d webhooks, want 1", len(cfg.Webhooks))
	}
	for i := range cfg.Webhooks {
		w := &cfg.Webhooks[i]
		if w.ClientConfig.Service == nil || w.ClientConfig.Service.Path == nil || *w.ClientConfig.Service.Path != "/validate" {
			t.Fatalf("webhook %s: clientConfig.service does not call /validate: %+v", w.Name, w.ClientConfig.Service)
		}
		w.ClientConfig.Service = nil
		w.ClientConfig.URL = &url
		w.ClientConfig.CABundle = caPEM
	}
	if _, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(t.Context(), &cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the webhook configuration: %v", err)
	}
}

// waitForWebhook creates pods with an image the webhook denies until the
// API server answers with the webhook's denial: the configuration is read
// by the API server in the background. A probe admitted meanwhile is
// deleted.
func waitForWebhook(t *testing.T, c kubernetes.Interface, image string) {
	t.Helper()
	ctx := t.Context()
	pods := c.CoreV1().Pods(appsNS)
	start := time.Now()
	defer func() { t.Logf("the webhook was in effect after %v", time.Since(start).Round(time.Millisecond)) }()
	waitFor(t, "the webhook to be called", func() error {
		p := newPod("", podContainer("app", image))
		p.GenerateName = "probe-"
		created, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err == nil {
			zero := int64(0)
			if err := pods.Delete(ctx, created.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				return fmt.Errorf("deleting the admitted probe: %w", err)
			}
			return errors.New("an unsigned pod was admitted: the webhook is not in effect yet")
		}
		if !strings.Contains(err.Error(), deniedBy) {
			return err
		}
		return nil
	})
}

// waitFor retries f until it returns nil, for up to webhookWait.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(webhookWait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", webhookWait, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deniedBy starts the message the API server returns for the webhook's
// denial.
const deniedBy = `admission webhook "images.trustgate.dev" denied the request: trustgate denied `

// wantDenied fails the test unless err is the API server's Forbidden with
// the webhook's denial, naming each part. It returns the message.
func wantDenied(t *testing.T, err error, parts ...string) string {
	t.Helper()
	if err == nil {
		t.Fatal("admitted, want denied")
	}
	if !apierrors.IsForbidden(err) {
		t.Fatalf("want the webhook's Forbidden, got %v (reason %q)", err, apierrors.ReasonForError(err))
	}
	msg := err.Error()
	t.Logf("denied: %s", msg)
	for _, p := range append([]string{deniedBy}, parts...) {
		if !strings.Contains(msg, p) {
			t.Fatalf("the denial lacks %q: %s", p, msg)
		}
	}
	return msg
}

// wantAbsent fails the test unless get finds no object.
func wantAbsent(t *testing.T, get func() error) {
	t.Helper()
	if err := get(); !apierrors.IsNotFound(err) {
		t.Fatalf("want no object, got err = %v", err)
	}
}

// wantWarning fails the test unless one warning has every part.
func wantWarning(t *testing.T, warnings []string, parts ...string) {
	t.Helper()
	t.Logf("warnings: %q", warnings)
	if !slices.ContainsFunc(warnings, func(w string) bool {
		for _, p := range parts {
			if !strings.Contains(w, p) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("no warning has all of %q: %q", parts, warnings)
	}
}

// warningRecorder keeps the warnings the API server returns (client-go's
// rest.WarningHandler).
type warningRecorder struct {
	mu  sync.Mutex
	got []string
}

func (w *warningRecorder) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

// take returns the warnings received since the last take.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.got
	w.got = nil
	return out
}

func podContainer(name, image string) corev1.Container {
	return corev1.Container{Name: name, Image: image}
}

func newPod(name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func newDeployment(name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{podContainer("app", image)}},
			},
		},
	}
}

func newCronJob(name, image string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{podContainer("job", image)},
				}},
			}},
		},
	}
}

// addEphemeral adds an ephemeral container to the pod name, as kubectl
// debug does (the pods/ephemeralcontainers subresource).
func addEphemeral(ctx context.Context, pods interface {
	Get(context.Context, string, metav1.GetOptions) (*corev1.Pod, error)
	UpdateEphemeralContainers(context.Context, string, *corev1.Pod, metav1.UpdateOptions) (*corev1.Pod, error)
}, name, container, image string) (*corev1.Pod, error) {
	p, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: container, Image: image,
			ImagePullPolicy:          corev1.PullIfNotPresent,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		},
	})
	return pods.UpdateEphemeralContainers(ctx, name, p, metav1.UpdateOptions{})
}
