package admission_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/trustgate/trustgate/admission"
)

// The deploy folder, and the source of the commands its Deployment runs.
// The cli package is internal to cmd/trustgate, so this test cannot build
// its cobra commands: it reads their flags from the source instead.
const (
	deployDir = "deploy"
	cliDir    = "../cmd/trustgate/internal/cli"
)

// kustomization is the part of kustomize's Kustomization the folder uses;
// read strictly, so that a field added there is seen here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// deployObjects is every object of the deploy folder, typed.
type deployObjects struct {
	namespaces          []*corev1.Namespace
	serviceAccounts     []*corev1.ServiceAccount
	clusterRoles        []*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
	deployments         []*appsv1.Deployment
	services            []*corev1.Service
	pdbs                []*policyv1.PodDisruptionBudget
	webhooks            []*admissionregistrationv1.ValidatingWebhookConfiguration
	kustomization       *kustomization
	// files are the folder's file names; namespaced, the namespace of
	// each namespaced object, by "KIND/NAME".
	files      []string
	namespaced map[string]string
}

// decodeDoc decodes one document strictly (unknown fields and duplicate
// keys are errors) into a new T, and appends it to *list.
func decodeDoc[T any](doc []byte, list *[]*T) error {
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// onlyComments reports whether a YAML document holds nothing but comments.
func onlyComments(doc []byte) bool {
	for line := range bytes.SplitSeq(doc, []byte("\n")) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' && !bytes.Equal(l, []byte("---")) {
			return false
		}
	}
	return true
}

// loadDeploy reads every YAML file of the deploy folder into its
// k8s.io/api type; a document of a kind the folder should not hold fails.
func loadDeploy(t *testing.T) *deployObjects {
	t.Helper()
	entries, err := os.ReadDir(deployDir)
	if err != nil {
		t.Fatal(err)
	}
	objs := &deployObjects{namespaced: map[string]string{}}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("%s/%s: a folder; the deploy folder is flat", deployDir, e.Name())
			continue
		}
		objs.files = append(objs.files, e.Name())
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		file := filepath.Join(deployDir, e.Name())
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		docs := 0
		for n := 1; ; n++ {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", file, n, err)
			}
			if onlyComments(doc) {
				continue
			}
			docs++
			if err := objs.add(doc); err != nil {
				t.Errorf("%s: document %d: %v", file, n, err)
			}
		}
		if docs == 0 {
			t.Errorf("%s: no object", file)
		}
	}
	return objs
}

func (o *deployObjects) add(doc []byte) error {
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	gvk := head.APIVersion + "/" + head.Kind
	if head.Metadata.Namespace != "" {
		o.namespaced[head.Kind+"/"+head.Metadata.Name] = head.Metadata.Namespace
	}
	switch gvk {
	case "v1/Namespace":
		return decodeDoc(doc, &o.namespaces)
	case "v1/ServiceAccount":
		return decodeDoc(doc, &o.serviceAccounts)
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return decodeDoc(doc, &o.clusterRoles)
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return decodeDoc(doc, &o.clusterRoleBindings)
	case "apps/v1/Deployment":
		return decodeDoc(doc, &o.deployments)
	case "v1/Service":
		return decodeDoc(doc, &o.services)
	case "policy/v1/PodDisruptionBudget":
		return decodeDoc(doc, &o.pdbs)
	case "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration":
		return decodeDoc(doc, &o.webhooks)
	case "kustomize.config.k8s.io/v1beta1/Kustomization":
		if o.kustomization != nil {
			return errors.New("a second Kustomization")
		}
		var k []*kustomization
		if err := decodeDoc(doc, &k); err != nil {
			return err
		}
		o.kustomization = k[0]
		return nil
	}
	// A Role, a RoleBinding or anything else would widen what the folder
	// installs beyond what this test checks.
	return fmt.Errorf("%s: not a kind the deploy folder should hold", gvk)
}

// one returns the single object of a kind.
func one[T any](t *testing.T, kind string, list []*T) *T {
	t.Helper()
	if len(list) != 1 {
		t.Fatalf("%d %s objects in %s, want exactly 1", len(list), kind, deployDir)
	}
	return list[0]
}

// The objects a user relies on, each the only one of its kind.
func (o *deployObjects) webhook(t *testing.T) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return one(t, "ValidatingWebhookConfiguration", o.webhooks)
}
func (o *deployObjects) deployment(t *testing.T) *appsv1.Deployment {
	return one(t, "Deployment", o.deployments)
}
func (o *deployObjects) service(t *testing.T) *corev1.Service { return one(t, "Service", o.services) }
func (o *deployObjects) container(t *testing.T) *corev1.Container {
	t.Helper()
	d := o.deployment(t)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", n)
	}
	return &d.Spec.Template.Spec.Containers[0]
}

func TestDeployParses(t *testing.T) {
	o := loadDeploy(t)
	for kind, n := range map[string]int{
		"Namespace": len(o.namespaces), "ServiceAccount": len(o.serviceAccounts),
		"ClusterRole": len(o.clusterRoles), "ClusterRoleBinding": len(o.clusterRoleBindings),
		"Deployment": len(o.deployments), "Service": len(o.services),
		"PodDisruptionBudget": len(o.pdbs), "ValidatingWebhookConfiguration": len(o.webhooks),
	} {
		if n != 1 {
			t.Errorf("%d %s objects, want 1", n, kind)
		}
	}
	if o.kustomization == nil {
		t.Error("no kustomization.yaml")
	}
}

func TestDeployNamespace(t *testing.T) {
	o := loadDeploy(t)
	ns := one(t, "Namespace", o.namespaces)
	if ns.Name != "trustgate-system" {
		t.Errorf("namespace %q, want trustgate-system", ns.Name)
	}
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if got := ns.Labels["pod-security.kubernetes.io/"+mode]; got != "restricted" {
			t.Errorf("label pod-security.kubernetes.io/%s = %q, want restricted", mode, got)
		}
	}
	for obj, in := range o.namespaced {
		if in != ns.Name {
			t.Errorf("%s is in namespace %q, not %q", obj, in, ns.Name)
		}
	}
	for _, obj := range []string{"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"} {
		found := false
		for k := range o.namespaced {
			found = found || strings.HasPrefix(k, obj+"/")
		}
		if !found {
			t.Errorf("the %s names no namespace: it would land in the one kubectl is using", obj)
		}
	}
}

// resourceKind maps a webhook rule's resource to the kind whose object the
// API server sends for it (pods/ephemeralcontainers sends the Pod).
var resourceKind = map[string]string{
	"pods": "Pod", "pods/ephemeralcontainers": "Pod", "podtemplates": "PodTemplate",
	"replicationcontrollers": "ReplicationController", "deployments": "Deployment",
	"statefulsets": "StatefulSet", "daemonsets": "DaemonSet", "replicasets": "ReplicaSet",
	"jobs": "Job", "cronjobs": "CronJob",
}

// covers reports whether rule sends group/v1 resource for op.
func covers(rule admissionregistrationv1.RuleWithOperations, group, resource string, op admissionregistrationv1.OperationType) bool {
	return slices.Contains(rule.APIGroups, group) && slices.Contains(rule.APIVersions, "v1") &&
		slices.Contains(rule.Resources, resource) &&
		(slices.Contains(rule.Operations, op) || slices.Contains(rule.Operations, admissionregistrationv1.OperationAll))
}

func TestDeployWebhook(t *testing.T) {
	o := loadDeploy(t)
	cfg := o.webhook(t)
	if len(cfg.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(cfg.Webhooks))
	}
	wh := cfg.Webhooks[0]
	if wh.FailurePolicy == nil || *wh.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy %v, want Fail: an object the webhook could not judge must be refused", wh.FailurePolicy)
	}
	if wh.SideEffects == nil || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("sideEffects %v, want None", wh.SideEffects)
	}
	if !slices.Equal(wh.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("admissionReviewVersions %v, want [v1]: the webhook answers only %s", wh.AdmissionReviewVersions, admission.ReviewAPIVersion)
	}
	if wh.TimeoutSeconds == nil {
		t.Error("no timeoutSeconds: the API server's default is 10 s, and the deadline must be checked against it")
	} else {
		timeout := time.Duration(*wh.TimeoutSeconds) * time.Second
		if timeout <= admission.DefaultDeadline {
			t.Errorf("timeoutSeconds %s is not over the webhook's default --deadline %s", timeout, admission.DefaultDeadline)
		}
		if d, ok := argValue(o.container(t).Args, "deadline"); ok {
			deadline, err := time.ParseDuration(d)
			if err != nil || deadline >= timeout {
				t.Errorf("--deadline=%s is not under timeoutSeconds %s", d, timeout)
			}
		}
	}
	if wh.ObjectSelector != nil && (len(wh.ObjectSelector.MatchLabels) > 0 || len(wh.ObjectSelector.MatchExpressions) > 0) {
		t.Errorf("objectSelector %v: a workload could leave the webhook by its own labels", wh.ObjectSelector)
	}

	// Every kind the webhook reads, for CREATE and UPDATE.
	want := map[string]string{
		"pods": "", "pods/ephemeralcontainers": "", "deployments": "apps", "statefulsets": "apps",
		"daemonsets": "apps", "replicasets": "apps", "jobs": "batch", "cronjobs": "batch",
	}
	for resource, group := range want {
		for _, op := range []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update} {
			if !slices.ContainsFunc(wh.Rules, func(r admissionregistrationv1.RuleWithOperations) bool { return covers(r, group, resource, op) }) {
				t.Errorf("no rule sends %s/v1 %s on %s", group, resource, op)
			}
		}
	}
	// Every resource the rules send is one the webhook reads: anything
	// else would be denied as a kind it does not read.
	kinds := admission.Kinds()
	sent := map[string]bool{}
	for _, r := range wh.Rules {
		for _, res := range r.Resources {
			kind, ok := resourceKind[res]
			if !ok {
				t.Errorf("rule resource %q: the webhook reads no such object", res)
				continue
			}
			for _, g := range r.APIGroups {
				for _, v := range r.APIVersions {
					gvk := g + "/" + v + "/" + kind
					if !slices.Contains(kinds, gvk) {
						t.Errorf("rule sends %s, which admission.ReadWorkload does not read (it reads %v)", gvk, kinds)
					}
					sent[gvk] = true
				}
			}
		}
	}
	for _, gvk := range kinds {
		if !sent[gvk] {
			t.Errorf("admission.ReadWorkload reads %s, but no rule sends it", gvk)
		}
	}

	// Not kube-system, not the webhook's own namespace; everything else.
	sel, err := metav1.LabelSelectorAsSelector(wh.NamespaceSelector)
	if err != nil {
		t.Fatal(err)
	}
	ownNS := o.deployment(t).Namespace
	for ns, in := range map[string]bool{"kube-system": false, ownNS: false, "default": true, "apps": true} {
		if got := sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns}); got != in {
			t.Errorf("namespaceSelector matches namespace %q: %v, want %v", ns, got, in)
		}
	}

	// The Service it calls.
	svc := o.service(t)
	ref := wh.ClientConfig.Service
	switch {
	case wh.ClientConfig.URL != nil:
		t.Errorf("clientConfig.url %q: want the Service", *wh.ClientConfig.URL)
	case ref == nil:
		t.Error("clientConfig names no Service")
	default:
		if ref.Name != svc.Name || ref.Namespace != svc.Namespace {
			t.Errorf("clientConfig.service %s/%s, the Service is %s/%s", ref.Namespace, ref.Name, svc.Namespace, svc.Name)
		}
		if ref.Path == nil || *ref.Path != "/validate" {
			t.Errorf("clientConfig.service.path %v, want /validate", ref.Path)
		}
		port := int32(443)
		if ref.Port != nil {
			port = *ref.Port
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port }) {
			t.Errorf("clientConfig.service.port %d: the Service has no such port", port)
		}
	}
}

// containerPort resolves a port by number or name to the container's port.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.Int && p.IntVal == cp.ContainerPort) || (p.Type == intstr.String && p.StrVal == cp.Name) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// listenPort is the port of the container's --listen (":8443" by default).
func listenPort(t *testing.T, args []string) int32 {
	t.Helper()
	addr, ok := argValue(args, "listen")
	if !ok {
		addr = ":8443"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--listen=%s: %v", addr, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("--listen=%s: %v", addr, err)
	}
	return int32(n)
}

func TestDeployService(t *testing.T) {
	o := loadDeploy(t)
	svc, d, c := o.service(t), o.deployment(t), o.container(t)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("the Service's selector %v does not select the Deployment's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 {
		t.Fatalf("Service ports %v, want 443 alone", svc.Spec.Ports)
	}
	port, ok := containerPort(c, svc.Spec.Ports[0].TargetPort)
	if !ok {
		t.Fatalf("Service targetPort %s is not a port of the container", svc.Spec.Ports[0].TargetPort.String())
	}
	if want := listenPort(t, c.Args); port != want {
		t.Errorf("Service targets container port %d; the webhook listens on %d", port, want)
	}
}

// flagArgs splits --name=value and --name value arguments, by name.
func flagArgs(args []string) (map[string]string, []string) {
	out := map[string]string{}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			positional = append(positional, a)
			continue
		}
		if n, v, ok := strings.Cut(name, "="); ok {
			out[n] = v
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out[name] = args[i+1]
			i++
		} else {
			out[name] = ""
		}
	}
	return out, positional
}

func argValue(args []string, name string) (string, bool) {
	flags, _ := flagArgs(args)
	v, ok := flags[name]
	return v, ok
}

// mountOf returns the volume mount a path lies under, and its volume.
func mountOf(spec *corev1.PodSpec, c *corev1.Container, p string) (*corev1.VolumeMount, *corev1.Volume) {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	if best == nil {
		return nil, nil
	}
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == best.Name {
			return best, &spec.Volumes[i]
		}
	}
	return best, nil
}

func TestDeployDeployment(t *testing.T) {
	o := loadDeploy(t)
	d, c := o.deployment(t), o.container(t)
	spec := &d.Spec.Template.Spec
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	if !strings.Contains(c.Image, "@sha256:") {
		t.Errorf("image %q: pin it by digest", c.Image)
	}
	sa := one(t, "ServiceAccount", o.serviceAccounts)
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("serviceAccountName %q, want %q", spec.ServiceAccountName, sa.Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector does not select its own pods (%v)", err)
	}

	// The command: `trustgate admission serve`, with flags it has.
	flags, positional := flagArgs(c.Args)
	if len(c.Command) > 0 {
		t.Errorf("command %v: the image's entrypoint is trustgate; give args only", c.Command)
	}
	if !slices.Equal(positional, []string{"admission", "serve"}) {
		t.Errorf("positional args %v, want [admission serve]", positional)
	}
	serve := commandFlags(t, "serve")
	for name := range flags {
		if !serve[name] {
			t.Errorf("--%s: `trustgate admission serve` has no such flag", name)
		}
	}
	for _, name := range []string{"policy", "policy-bundle", "deployment", "trust-root", "tls-cert", "tls-key", "state", "listen"} {
		if flags[name] == "" {
			t.Errorf("no --%s", name)
		}
	}
	// README.md's kustomize overlay replaces args[8].
	if len(c.Args) < 9 || !strings.HasPrefix(c.Args[8], "--deployment=") {
		t.Errorf("args[8] is not --deployment=NAME, which README.md's overlay replaces")
	}
	if v := flags["on-registry-error"]; v != "" && v != admission.RegistryErrorDeny {
		t.Errorf("--on-registry-error=%s: the shipped manifest fails closed", v)
	}
	if _, ok := flags["allow-tags"]; ok {
		t.Error("--allow-tags: the shipped manifest denies images named by a tag alone")
	}

	// Each file the flags name, in the volume meant for it.
	for _, f := range []struct {
		flag, configMap, secret string
		emptyDir                bool
	}{
		{flag: "policy", configMap: "trustgate-policy"},
		{flag: "policy-bundle", configMap: "trustgate-policy"},
		{flag: "trust-root", configMap: "trustgate-trust-root"},
		{flag: "tls-cert", secret: "trustgate-admission-tls"},
		{flag: "tls-key", secret: "trustgate-admission-tls"},
		{flag: "state", emptyDir: true},
	} {
		p := flags[f.flag]
		m, vol := mountOf(spec, c, p)
		if m == nil || vol == nil {
			t.Errorf("--%s=%s lies in no volume", f.flag, p)
			continue
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("--%s: mount %s uses subPath, which is never updated", f.flag, m.MountPath)
		}
		switch {
		case f.configMap != "":
			if vol.ConfigMap == nil || vol.ConfigMap.Name != f.configMap {
				t.Errorf("--%s=%s: volume %q is not the ConfigMap %s", f.flag, p, vol.Name, f.configMap)
			}
		case f.secret != "":
			if vol.Secret == nil || vol.Secret.SecretName != f.secret {
				t.Errorf("--%s=%s: volume %q is not the Secret %s", f.flag, p, vol.Name, f.secret)
			}
		case f.emptyDir:
			if vol.EmptyDir == nil || m.ReadOnly {
				t.Errorf("--%s=%s: volume %q is not a writable emptyDir", f.flag, p, vol.Name)
			}
		}
		if !f.emptyDir && !m.ReadOnly {
			t.Errorf("--%s: mount %s is not read-only", f.flag, m.MountPath)
		}
		// README.md creates the keys under the files' own names.
		if (vol.ConfigMap != nil && len(vol.ConfigMap.Items) > 0) || (vol.Secret != nil && len(vol.Secret.Items) > 0) {
			t.Errorf("--%s: volume %q selects items; %s must be a key's own name", f.flag, vol.Name, path.Base(p))
		}
	}
	if path.Base(flags["policy-bundle"]) != path.Base(flags["policy"])+".bundle.json" {
		t.Errorf("--policy-bundle=%s: `trustgate policy sign %s` writes %s.bundle.json",
			flags["policy-bundle"], path.Base(flags["policy"]), path.Base(flags["policy"]))
	}

	// Probes over HTTPS on the port it listens on.
	listen := listenPort(t, c.Args)
	if p, ok := containerPort(c, intstr.FromInt32(listen)); !ok || p != listen {
		t.Errorf("the container declares no port %d (--listen)", listen)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("no %s over HTTP GET", pr.name)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path || g.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("%s: %s %s, want HTTPS %s", pr.name, g.Scheme, g.Path, pr.path)
		}
		if p, ok := containerPort(c, g.Port); !ok || p != listen {
			t.Errorf("%s: port %s is not the container's %d", pr.name, g.Port.String(), listen)
		}
	}

	// Non-root, read-only, nothing more than it needs.
	psc, csc := spec.SecurityContext, c.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if csc == nil {
		t.Fatal("the container has no securityContext")
	}
	nonRoot := psc.RunAsNonRoot
	if csc.RunAsNonRoot != nil {
		nonRoot = csc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Error("runAsNonRoot is not true")
	}
	for _, uid := range []*int64{psc.RunAsUser, csc.RunAsUser} {
		if uid != nil && *uid == 0 {
			t.Error("runAsUser 0")
		}
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if csc.Privileged != nil && *csc.Privileged {
		t.Error("privileged")
	}
	if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
		t.Errorf("capabilities %v, want drop [ALL] and nothing added", csc.Capabilities)
	}
	seccomp := psc.SeccompProfile
	if csc.SeccompProfile != nil {
		seccomp = csc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %v, want RuntimeDefault", seccomp)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("the pod shares a host namespace")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %q is a hostPath", v.Name)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}
}

func TestDeployPodDisruptionBudget(t *testing.T) {
	o := loadDeploy(t)
	pdb, d := one(t, "PodDisruptionBudget", o.pdbs), o.deployment(t)
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
		t.Errorf("minAvailable %v, want 1", pdb.Spec.MinAvailable)
	}
	if pdb.Spec.MaxUnavailable != nil {
		t.Errorf("maxUnavailable %v beside minAvailable", pdb.Spec.MaxUnavailable)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the PodDisruptionBudget's selector does not select the Deployment's pods (%v)", err)
	}
	if pdb.Namespace != d.Namespace {
		t.Errorf("the PodDisruptionBudget is in %q, the Deployment in %q", pdb.Namespace, d.Namespace)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas <= 1 {
		t.Error("with minAvailable 1, one replica could never be evicted")
	}
}

func TestDeployRBAC(t *testing.T) {
	o := loadDeploy(t)
	role := one(t, "ClusterRole", o.clusterRoles)
	binding := one(t, "ClusterRoleBinding", o.clusterRoleBindings)
	sa := one(t, "ServiceAccount", o.serviceAccounts)
	if role.AggregationRule != nil {
		t.Error("the ClusterRole aggregates other roles")
	}
	want := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}
	if len(role.Rules) != 1 {
		t.Fatalf("ClusterRole rules %v, want only %v", role.Rules, want)
	}
	r := role.Rules[0]
	if !slices.Equal(r.APIGroups, want.APIGroups) || !slices.Equal(r.Resources, want.Resources) ||
		!slices.Equal(r.Verbs, want.Verbs) || len(r.NonResourceURLs) > 0 {
		t.Errorf("ClusterRole rule %v, want only get on secrets", r)
	}
	if binding.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}) {
		t.Errorf("roleRef %v, want the ClusterRole %s", binding.RoleRef, role.Name)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0] != (rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}) {
		t.Errorf("subjects %v, want the ServiceAccount %s/%s alone", binding.Subjects, sa.Namespace, sa.Name)
	}
}

func TestDeployKustomization(t *testing.T) {
	o := loadDeploy(t)
	k := o.kustomization
	if k == nil {
		t.Fatal("no kustomization.yaml")
	}
	var manifests []string
	for _, f := range o.files {
		switch {
		case f == "kustomization.yaml" || f == "README.md":
		case strings.HasSuffix(f, ".yaml"):
			manifests = append(manifests, f)
		default:
			t.Errorf("%s/%s: neither a manifest (.yaml) nor README.md", deployDir, f)
		}
	}
	listed := slices.Clone(k.Resources)
	slices.Sort(listed)
	if n := len(slices.Compact(slices.Clone(listed))); n != len(listed) {
		t.Errorf("resources list a file twice: %v", k.Resources)
	}
	if !slices.Equal(listed, manifests) {
		t.Errorf("resources %v, the folder's manifests are %v", k.Resources, manifests)
	}
	if len(k.Resources) == 0 || k.Resources[0] != "namespace.yaml" || k.Resources[len(k.Resources)-1] != "webhook.yaml" {
		t.Errorf("resources %v: namespace.yaml first, webhook.yaml last", k.Resources)
	}
}

// readme joins the README's shell continuation lines.
func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(data), "\\\n", " ")
}

func TestDeployReadme(t *testing.T) {
	text := readme(t)
	// Flags: those on `trustgate admission ...` command lines, and those
	// written alone as `--flag`, are flags of serve or check (write another
	// tool's flag with its command in the same code span).
	serve, check := commandFlags(t, "serve"), commandFlags(t, "check")
	flagRE := regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)
	for line := range strings.SplitSeq(text, "\n") {
		i := strings.Index(line, "trustgate admission ")
		if i < 0 || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		cmd := line[i:]
		if j := strings.Index(cmd, "`"); j >= 0 {
			cmd = cmd[:j] // inline code ends there
		}
		known := check
		if strings.HasPrefix(cmd, "trustgate admission serve") {
			known = serve
		}
		for _, m := range flagRE.FindAllStringSubmatch(cmd, -1) {
			if !known[m[1]] {
				t.Errorf("README: %q: no flag --%s", strings.TrimSpace(cmd), m[1])
			}
		}
	}
	for _, m := range regexp.MustCompile("`--([a-z][a-z0-9-]*)").FindAllStringSubmatch(text, -1) {
		if !serve[m[1]] && !check[m[1]] {
			t.Errorf("README: `--%s` is a flag of neither admission serve nor check", m[1])
		}
	}

	// Metrics: the README lists each one metrics.go defines, and no other.
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`Name:\s*"(trustgate_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		defined[m[1]] = true
	}
	if len(defined) < 5 {
		t.Fatalf("read %d metric names from metrics.go", len(defined))
	}
	mentioned := map[string]bool{}
	for _, m := range regexp.MustCompile(`trustgate_admission_[a-z_]+`).FindAllString(text, -1) {
		mentioned[m] = true
		if !defined[m] && !defined[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")] {
			t.Errorf("README names metric %s, which metrics.go does not define", m)
		}
	}
	for m := range defined {
		if !mentioned[m] {
			t.Errorf("README does not list metric %s", m)
		}
	}
}

// TestDeployCommandFlags checks the flag reader itself, on flags known to
// be there and not.
func TestDeployCommandFlags(t *testing.T) {
	serve, check := commandFlags(t, "serve"), commandFlags(t, "check")
	for _, name := range []string{"policy", "policy-bundle", "deployment", "trust-root", "trusted-root",
		"policy-certificate-identity", "policy-certificate-oidc-issuer", "state", "deadline",
		"on-registry-error", "allow-tags", "cache-size", "cache-ttl",
		"listen", "tls-cert", "tls-key", "policy-recheck", "pull-secrets", "kubeconfig"} {
		if !serve[name] {
			t.Errorf("serve: --%s not found", name)
		}
	}
	for _, name := range []string{"filename", "namespace", "output"} {
		if serve[name] {
			t.Errorf("serve: --%s is check's", name)
		}
		if !check[name] {
			t.Errorf("check: --%s not found", name)
		}
	}
	if check["tls-cert"] {
		t.Error("check: --tls-cert is serve's")
	}
}

// commandFlags reads, from the cli package's source, the long flag names
// of the `trustgate admission` subcommand whose cobra.Command Use begins
// with use: the flags its builder defines, and those of the register
// methods it calls (followed through struct fields and embedding, with
// their string arguments, such as the "policy-" prefix).
func commandFlags(t *testing.T, use string) map[string]bool {
	t.Helper()
	pkg := parseCLI(t)
	var builder *ast.FuncDecl
	for _, fn := range pkg.funcs {
		if fn.Body != nil && hasCommandUse(fn.Body, use+" ") {
			if builder != nil {
				t.Fatalf("two functions build a command used as %q: %s and %s", use, builder.Name.Name, fn.Name.Name)
			}
			builder = fn
		}
	}
	if builder == nil {
		t.Fatalf("no function of %s builds a cobra.Command with Use %q", cliDir, use+" ...")
	}
	out := map[string]bool{}
	if err := pkg.flags(builder, nil, out, 0); err != nil {
		t.Fatalf("reading the flags of %s: %v", builder.Name.Name, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s defines no flags", builder.Name.Name)
	}
	return out
}

// hasCommandUse finds a cobra.Command literal whose Use starts with prefix.
func hasCommandUse(body *ast.BlockStmt, prefix string) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok || typeName(lit.Type) != "cobra.Command" {
			return true
		}
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Use" {
				if s, ok := kv.Value.(*ast.BasicLit); ok && s.Kind == token.STRING {
					v, _ := strconv.Unquote(s.Value)
					found = found || strings.HasPrefix(v, prefix)
				}
			}
		}
		return true
	})
	return found
}

// cliSource is the parsed cli package: its functions, methods by receiver
// type, and struct fields by type.
type cliSource struct {
	funcs   []*ast.FuncDecl
	methods map[string]map[string]*ast.FuncDecl
	fields  map[string]map[string]string // type -> field -> type
	embeds  map[string][]string
}

func parseCLI(t *testing.T) *cliSource {
	t.Helper()
	entries, err := os.ReadDir(cliDir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	s := &cliSource{methods: map[string]map[string]*ast.FuncDecl{}, fields: map[string]map[string]string{}, embeds: map[string][]string{}}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(cliDir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				s.funcs = append(s.funcs, d)
				if d.Recv != nil && len(d.Recv.List) == 1 {
					recv := typeName(d.Recv.List[0].Type)
					if s.methods[recv] == nil {
						s.methods[recv] = map[string]*ast.FuncDecl{}
					}
					s.methods[recv][d.Name.Name] = d
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok {
						continue
					}
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					fields := map[string]string{}
					for _, fld := range st.Fields.List {
						typ := typeName(fld.Type)
						if len(fld.Names) == 0 {
							fields[typ] = typ
							s.embeds[ts.Name.Name] = append(s.embeds[ts.Name.Name], typ)
						}
						for _, n := range fld.Names {
							fields[n.Name] = typ
						}
					}
					s.fields[ts.Name.Name] = fields
				}
			}
		}
	}
	return s
}

// typeName writes a type expression as T or pkg.T, pointers dropped ("" for
// anything else).
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return typeName(e.X)
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			return x.Name + "." + e.Sel.Name
		}
	}
	return ""
}

// field is the type of field name of typ, promoted through embedding.
func (s *cliSource) field(typ, name string) string {
	if f, ok := s.fields[typ][name]; ok {
		return f
	}
	for _, e := range s.embeds[typ] {
		if f := s.field(e, name); f != "" {
			return f
		}
	}
	return ""
}

// method is method name of typ, promoted through embedding.
func (s *cliSource) method(typ, name string) *ast.FuncDecl {
	if m := s.methods[typ][name]; m != nil {
		return m
	}
	for _, e := range s.embeds[typ] {
		if m := s.method(e, name); m != nil {
			return m
		}
	}
	return nil
}

// scope is what flags knows of a function's names: their types, and the
// values of string parameters.
type scope struct {
	types   map[string]string
	strings map[string]string
}

func (sc *scope) typeOf(e ast.Expr, s *cliSource) string {
	switch e := e.(type) {
	case *ast.Ident:
		return sc.types[e.Name]
	case *ast.ParenExpr:
		return sc.typeOf(e.X, s)
	case *ast.SelectorExpr:
		if x := sc.typeOf(e.X, s); x != "" {
			return s.field(x, e.Sel.Name)
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Flags" || sel.Sel.Name == "PersistentFlags") {
			return "pflag.FlagSet"
		}
	}
	return ""
}

func (sc *scope) str(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			v, err := strconv.Unquote(e.Value)
			return v, err == nil
		}
	case *ast.Ident:
		v, ok := sc.strings[e.Name]
		return v, ok
	case *ast.ParenExpr:
		return sc.str(e.X)
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			a, ok1 := sc.str(e.X)
			b, ok2 := sc.str(e.Y)
			return a + b, ok1 && ok2
		}
	}
	return "", false
}

// flagDef matches pflag.FlagSet's flag-defining methods.
var flagDef = regexp.MustCompile(`^(Bool|String|Int|Int8|Int16|Int32|Int64|Uint|Uint8|Uint16|Uint32|Uint64|Float32|Float64|Duration|StringArray|StringSlice|StringToString|IntSlice|BoolSlice|DurationSlice|Count|IP|IPNet|IPSlice|BytesHex|BytesBase64|Func|BoolFunc|Text|Time)?(Var)?(P)?$`)

// flags adds to out the flags fn defines, calling it with args (string
// values where known) in the caller's scope.
func (s *cliSource) flags(fn *ast.FuncDecl, args []ast.Expr, out map[string]bool, depth int) error {
	return s.flagsIn(fn, &scope{types: map[string]string{}, strings: map[string]string{}}, args, nil, out, depth)
}

func (s *cliSource) flagsIn(fn *ast.FuncDecl, sc *scope, args []ast.Expr, caller *scope, out map[string]bool, depth int) error {
	if depth > 8 {
		return fmt.Errorf("%s: calls nested too deep", fn.Name.Name)
	}
	if fn.Recv != nil && len(fn.Recv.List) == 1 && len(fn.Recv.List[0].Names) == 1 {
		sc.types[fn.Recv.List[0].Names[0].Name] = typeName(fn.Recv.List[0].Type)
	}
	i := 0
	for _, p := range fn.Type.Params.List {
		for _, n := range p.Names {
			sc.types[n.Name] = typeName(p.Type)
			if caller != nil && i < len(args) {
				if v, ok := caller.str(args[i]); ok {
					sc.strings[n.Name] = v
				}
				if typ := caller.typeOf(args[i], s); typ != "" {
					sc.types[n.Name] = typ
				}
			}
			i++
		}
	}
	var err error
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if err != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.ValueSpec: // var f T
			for _, name := range n.Names {
				if n.Type != nil {
					sc.types[name.Name] = typeName(n.Type)
				}
			}
		case *ast.AssignStmt: // fl := cmd.Flags()
			if len(n.Lhs) == len(n.Rhs) {
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok {
						if typ := sc.typeOf(n.Rhs[i], s); typ != "" {
							sc.types[id.Name] = typ
						}
					}
				}
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			recv := sc.typeOf(sel.X, s)
			if recv == "pflag.FlagSet" {
				m := flagDef.FindStringSubmatch(sel.Sel.Name)
				if m == nil {
					return true // MarkHidden and the like
				}
				at := 0
				if m[2] == "Var" {
					at = 1
				}
				if at >= len(n.Args) {
					err = fmt.Errorf("%s: %s with no name argument", fn.Name.Name, sel.Sel.Name)
					return false
				}
				name, ok := sc.str(n.Args[at])
				if !ok {
					err = fmt.Errorf("%s: %s: a flag name this test cannot read", fn.Name.Name, sel.Sel.Name)
					return false
				}
				out[name] = true
				return true
			}
			if m := s.method(recv, sel.Sel.Name); m != nil && recv != "" {
				err = s.flagsIn(m, &scope{types: map[string]string{}, strings: map[string]string{}}, n.Args, sc, out, depth+1)
			}
		}
		return true
	})
	return err
}
