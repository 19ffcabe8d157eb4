package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/admission"
	"github.com/trustgate/trustgate/internal/safetext"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/verifier"
)

// admissionFlags configure the checker both admission commands use.
type admissionFlags struct {
	policy, policyBundle, deployment, state string
	trust                                   policyTrustFlags
	deadline, cacheTTL                      time.Duration
	cacheSize                               int
	onRegistryError                         string
	allowTags                               bool
}

func (f *admissionFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "the signed policy (required)")
	fl.StringVar(&f.policyBundle, "policy-bundle", "", "the policy's bundle (default: POLICY.bundle.json)")
	fl.StringVar(&f.deployment, "deployment", "", "the deployment the policy must govern, its metadata.name (required)")
	fl.StringVar(&f.state, "state", "", "file remembering the last policy accepted (default: trustgate/policy-state.json in the user's state folder)")
	f.trust.register(cmd, false)
	fl.DurationVar(&f.deadline, "deadline", admission.DefaultDeadline, "longest time one decision may take; keep it under the webhook's timeoutSeconds")
	fl.StringVar(&f.onRegistryError, "on-registry-error", admission.RegistryErrorDeny, "deny (fail closed) or admit, with a warning, an image whose registry did not answer in time")
	fl.BoolVar(&f.allowTags, "allow-tags", false, "admit an image named by a tag alone when the digest it names now passes (the kubelet may pull other bytes later)")
	fl.IntVar(&f.cacheSize, "cache-size", admission.DefaultCacheSize, "verdicts kept in memory (0: none)")
	fl.DurationVar(&f.cacheTTL, "cache-ttl", admission.DefaultCacheTTL, "how long a verdict is kept")
}

// source loads the signed policy: it must verify now.
func (f *admissionFlags) source() (*admission.PolicySource, error) {
	if f.policy == "" || f.deployment == "" {
		return nil, errors.New(`required flags "policy" and "deployment"`)
	}
	trust, err := f.trust.root(context.Background(), true)
	if err != nil {
		return nil, err
	}
	state := f.state
	if state == "" {
		if state, err = verifier.DefaultStatePath(); err != nil {
			return nil, err
		}
	}
	src := &admission.PolicySource{Path: f.policy, Bundle: f.policyBundle, Deployment: f.deployment, Trust: trust, StatePath: state}
	if err := src.Load(time.Now()); err != nil {
		if errors.Is(err, verifier.ErrDenied) {
			return nil, &exitError{code: ExitDenied, err: err}
		}
		return nil, err
	}
	return src, nil
}

func (f *admissionFlags) config(src *admission.PolicySource) admission.Config {
	size := f.cacheSize
	if size == 0 {
		size = -1 // the flag's 0 means none; the library's means its default
	}
	return admission.Config{
		Policy: src, Registry: pin.Registry{}, Deadline: f.deadline,
		OnRegistryError: f.onRegistryError, AllowTags: f.allowTags,
		CacheSize: size, CacheTTL: f.cacheTTL,
	}
}

// NewAdmissionCmd builds "trustgate admission".
func NewAdmissionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "The Kubernetes validating admission webhook, and its decision offline",
		Long: `A Kubernetes validating admission webhook that admits a workload (Pods, and the
pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
CronJobs) only when every image it names passes the signed policy: the image
entry whose repositories match, the digest pinned, the attestations stored
beside the image verified. See admission/deploy for the manifests that
install it.`,
	}
	cmd.AddCommand(newAdmissionServeCmd(), newAdmissionCheckCmd())
	return cmd
}

type admissionServeFlags struct {
	admissionFlags
	listen, tlsCert, tlsKey, kubeconfig string
	recheck                             time.Duration
	pullSecrets                         bool
}

func newAdmissionServeCmd() *cobra.Command {
	var f admissionServeFlags
	cmd := &cobra.Command{
		Use:   "serve --policy P --deployment NAME --trust-root KEY.pub --tls-cert C --tls-key K [--listen :8443]",
		Short: "Serve the validating webhook over HTTPS",
		Long: `Serve AdmissionReview (admission.k8s.io/v1) at /validate over HTTPS, with
/healthz, /readyz and Prometheus /metrics. The signed policy must verify at
start; it is re-read when its files change, and a policy that fails (bad
signature, expired, rolled back) leaves the one in force. The TLS key pair
is re-read when it is renewed.

With --pull-secrets (the default inside a cluster), a pod's imagePullSecrets
are read through the API server to reach private registries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAdmissionServe(cmd, f) },
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", ":8443", "address to serve HTTPS on")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate, PEM (required)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key, PEM (required)")
	fl.DurationVar(&f.recheck, "policy-recheck", 30*time.Second, "re-read the policy at least this often")
	fl.BoolVar(&f.pullSecrets, "pull-secrets", true, "read pods' imagePullSecrets through the API server (in a cluster, or with --kubeconfig)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for reading imagePullSecrets (default: the pod's service account)")
	return cmd
}

func runAdmissionServe(cmd *cobra.Command, f admissionServeFlags) error {
	if f.tlsCert == "" || f.tlsKey == "" {
		return errors.New(`required flags "tls-cert" and "tls-key"`)
	}
	kp := &admission.KeyPair{CertFile: f.tlsCert, KeyFile: f.tlsKey}
	if err := kp.Load(); err != nil {
		return err
	}
	src, err := f.source()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
	metrics := admission.NewMetrics(src)
	src.Log, src.OnReload = log, metrics.Reloaded
	cfg := f.config(src)
	cfg.Metrics = metrics
	if f.pullSecrets {
		_, inCluster := os.LookupEnv("KUBERNETES_SERVICE_HOST")
		if f.kubeconfig != "" || inCluster {
			client, err := admission.KubeClient(f.kubeconfig)
			if err != nil {
				return fmt.Errorf("--pull-secrets: %w", err)
			}
			cfg.Keychain = admission.PullSecretKeychain(client)
		}
	}
	checker, err := admission.NewChecker(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go src.Watch(ctx, f.recheck)
	p := src.Current()
	log.Info("trustgate admission serving", "addr", ln.Addr().String(), "policy", f.policy,
		"version", p.Version, "digest", p.Source().Digest.String(), "expires", p.ExpiresAt().UTC().Format(time.RFC3339))
	return admission.Serve(ctx, ln, &admission.Handler{Checker: checker, Metrics: metrics, Log: log}, kp, log)
}

type admissionCheckFlags struct {
	admissionFlags
	files             []string
	namespace, output string
}

func newAdmissionCheckCmd() *cobra.Command {
	var f admissionCheckFlags
	cmd := &cobra.Command{
		Use:   "check -f MANIFEST.yaml --policy P --deployment NAME --trust-root KEY.pub",
		Short: "Make the webhook's decision offline, on manifest files",
		Long: `Decide on every object of the manifest files (YAML or JSON, many documents,
List objects) as the webhook would: the same policy, the same registries,
the same verification. Objects that run no containers are skipped.

Exit 0 when every object would be admitted, 1 when one would be denied, 2 for
bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAdmissionCheck(cmd, f) },
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "filename", "f", nil, "manifest file, - for standard input (repeatable, required)")
	fl.StringVarP(&f.namespace, "namespace", "n", "default", "namespace of objects that name none")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	return cmd
}

// manifestVerdict is one object's decision in the json output.
type manifestVerdict struct {
	File     string   `json:"file"`
	Document string   `json:"document"`
	Kind     string   `json:"kind,omitempty"`
	Name     string   `json:"name,omitempty"`
	Allowed  bool     `json:"allowed"`
	Skipped  bool     `json:"skipped,omitempty"`
	Message  string   `json:"message,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

func runAdmissionCheck(cmd *cobra.Command, f admissionCheckFlags) error {
	if len(f.files) == 0 {
		return errors.New(`required flag "filename" (-f)`)
	}
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	src, err := f.source()
	if err != nil {
		return err
	}
	checker, err := admission.NewChecker(f.config(src))
	if err != nil {
		return err
	}
	var all []manifestVerdict
	for _, file := range f.files {
		var r io.Reader
		if file == "-" {
			r = cmd.InOrStdin()
		} else {
			fh, err := os.Open(file)
			if err != nil {
				return err
			}
			defer fh.Close()
			r = fh
		}
		results, err := checker.CheckManifests(cmd.Context(), r, f.namespace)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, res := range results {
			v := manifestVerdict{File: file, Document: res.Document, Kind: res.Kind, Name: res.Name,
				Allowed: res.Allowed(), Skipped: res.Skipped, Message: res.Decision.Message, Warnings: res.Decision.Warnings}
			if res.Err != nil {
				v.Message = "not readable: " + res.Err.Error()
			}
			all = append(all, v)
		}
	}
	out := cmd.OutOrStdout()
	if f.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return err
		}
	} else {
		printManifestVerdicts(out, all)
	}
	for _, v := range all {
		if !v.Allowed {
			return &exitError{code: ExitDenied, err: errors.New("a workload would be denied")}
		}
	}
	return nil
}

func printManifestVerdicts(out io.Writer, all []manifestVerdict) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, v := range all {
		verdict := "ADMIT"
		switch {
		case v.Skipped:
			verdict = "SKIP"
		case !v.Allowed:
			verdict = "DENY"
		}
		line := fmt.Sprintf("%s\t%s#%s\t%s/%s", verdict, v.File, v.Document, v.Kind, v.Name)
		if !v.Allowed {
			line += "\t" + safetext.Line(v.Message)
		}
		fmt.Fprintln(tw, line)
		for _, w := range v.Warnings {
			fmt.Fprintf(tw, "WARN\t%s#%s\t%s/%s\t%s\n", v.File, v.Document, v.Kind, v.Name, safetext.Line(w))
		}
	}
	tw.Flush()
}
