package cli

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/buildinfo"
	"github.com/trustgate/trustgate/internal/example"
	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/sbom"
	"github.com/trustgate/trustgate/sbomprop"
	"github.com/trustgate/trustgate/stack"
	"github.com/trustgate/trustgate/verifier"
	"github.com/trustgate/trustgate/verify"
)

// NewDemoCmd builds "trustgate demo".
func NewDemoCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Run trustgate on the built-in example deployment",
		Long: `Build the example AI gateway deployment (a gateway, a Go and a Python
guardrail plugin, a compliance agent, a local model and the gateway's image),
inventory it as a CycloneDX SBOM, sign the SBOM with a throwaway key as an
in-toto attestation in a Sigstore bundle, then write a policy for it (policy
init), test it, sign it and load it back as a verifier does.

The example's Go programs (trustgate-gateway, the guardrail plugin and the
compliance agent) are built with the local Go toolchain: in a trustgate
checkout from the checkout; elsewhere, as after go install, from the sources
of this trustgate's version built into it, their dependencies coming from the
Go module cache or proxy and checked against trustgate's go.sum.

With --dir the example and its SBOM are kept there; otherwise they live in a
temporary folder that is removed at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder to build the example in and keep (default: a temporary folder)")
	return cmd
}

func runDemo(cmd *cobra.Command, dir string) error {
	out := cmd.OutOrStdout()
	kept := dir != ""
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trustgate-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx := cmd.Context()

	fmt.Fprintf(out, "trustgate demo: the example AI gateway deployment\n\n")
	fmt.Fprintf(out, "1. Building the example in %s\n", dir)
	if example.Checkout(ctx) == "" {
		fmt.Fprintf(out, "   not in a trustgate checkout: its Go programs are built from the sources of trustgate %s built into this binary\n", buildinfo.Read().Version)
	}
	manifest, err := example.Build(ctx, dir)
	if err != nil {
		return err
	}
	s, err := stack.Load(manifest)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "2. Inventorying it from %s\n", filepath.Base(manifest))
	opts := sbom.Options{}
	if isTerminal(cmd.ErrOrStderr()) {
		opts.Progress = progressPrinter(cmd.ErrOrStderr())
	}
	bom, err := sbom.Generate(ctx, s, opts)
	if err != nil {
		return err
	}
	data, err := sbom.Marshal(bom, sbom.DefaultSpecVersion)
	if err != nil {
		return err
	}
	sbomPath := filepath.Join(dir, "sbom.cdx.json")
	if err := atomicfile.Write(sbomPath, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "   wrote %s: CycloneDX %s, %d bytes, serial %s\n\n", sbomPath, sbom.DefaultSpecVersion, len(data), bom.SerialNumber)
	printSummary(out, bom)

	fmt.Fprintf(out, "\n3. Signing the SBOM as an in-toto attestation\n")
	key, err := demoAttest(cmd, dir, kept, bom, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n4. Writing a policy for the deployment and signing it\n")
	if _, err := demoPolicy(cmd, dir, s.Metadata.Name, bom, key); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n5. Verifying the deployment against the signed policy\n")
	if err := demoVerify(cmd, s, verifier.Config{
		Stack: manifest, Policy: filepath.Join(dir, "policy.yaml"),
		Trust:     policy.TrustRoot{Keys: []crypto.PublicKey{key.Public()}},
		Bundles:   []string{filepath.Join(dir, "sbom.cdx.json.bundle.json")},
		StatePath: filepath.Join(dir, "policy-state.json"),
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n6. Starting trustgate-gateway on the verified example\n")
	return demoGateway(cmd, dir, s)
}

// demoVerify verifies the example as trustgate verify does (one call of
// the verifier library), then changes one byte of the Python plugin and
// shows the denial.
func demoVerify(cmd *cobra.Command, s *stack.Stack, cfg verifier.Config) error {
	out := cmd.OutOrStdout()
	check := func() (verify.Report, error) {
		res, err := verifier.Deployment(cmd.Context(), cfg)
		if err != nil {
			return verify.Report{}, err
		}
		return res.Report, nil
	}
	r, err := check()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   %s: %d decisions, every component measured from its bytes and bound to the signed SBOM, the manifest (commands, providers) signed with it\n", verdictWord(r.Allowed), len(r.Decisions))
	if !r.Allowed {
		printVerify(cmd, r)
		return errors.New("the example does not verify against its own policy")
	}
	victim, err := firstFile(filepath.Join(s.Source.Dir, "plugins", "pii-redactor"))
	if err != nil {
		return err
	}
	orig, err := os.ReadFile(victim)
	if err != nil {
		return err
	}
	if err := os.WriteFile(victim, append(append([]byte{}, orig...), '#'), 0o644); err != nil {
		return err
	}
	rel, _ := filepath.Rel(s.Source.Dir, victim)
	fmt.Fprintf(out, "   now one byte is appended to %s, and the check runs again:\n", rel)
	r, err = check()
	if rerr := os.WriteFile(victim, orig, 0o644); rerr != nil && err == nil {
		err = fmt.Errorf("putting %s back: %w", rel, rerr)
	}
	if err != nil {
		return err
	}
	for _, d := range r.Decisions {
		if !d.Allowed {
			fmt.Fprintf(out, "   %s  %s  %s: expected %s, found %s\n", verdictWord(false), d.Subject, d.Rule, d.Expected, d.Found)
		}
	}
	if r.Allowed {
		return errors.New("a changed plugin was not denied")
	}
	fmt.Fprintf(out, "   the plugin is denied (and trustgate verify exits 1); the file is put back.\n")
	return nil
}

func verdictWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// firstFile returns the first regular file under dir, in walk order.
func firstFile(dir string) (string, error) {
	var found string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if found == "" && d.Type().IsRegular() {
			found = path
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" && err == nil {
		err = fmt.Errorf("no file under %s", dir)
	}
	return found, err
}

// demoPolicy runs policy init, lint, a dry-run test and sign on the
// example, then loads the signed policy as a verifier would.
func demoPolicy(cmd *cobra.Command, dir, name string, bom *cdx.BOM, key *attest.Key) (*policy.Policy, error) {
	out := cmd.OutOrStdout()
	now := time.Now()
	facts, err := policy.FactsFromSBOM(bom, now)
	if err != nil {
		return nil, err
	}
	pub, err := key.MarshalPublic()
	if err != nil {
		return nil, err
	}
	text, err := policy.Init(name, facts, policy.InitSigner{Name: "demo", PEM: string(pub)})
	if err != nil {
		return nil, err
	}
	polPath := filepath.Join(dir, "policy.yaml")
	if err := atomicfile.Write(polPath, text, 0o644); err != nil {
		return nil, err
	}
	p, err := policy.Parse(polPath, text, policy.Options{Now: now})
	if err != nil {
		return nil, err
	}
	pinned, served := 0, 0
	for _, c := range p.Components {
		if len(c.Digests) > 0 {
			pinned++
		} else if c.Provider != "" {
			served++
		}
	}
	fmt.Fprintf(out, "   wrote %s (policy init --signer demo=demo.pub): %d components pinned, each needing an SBOM signed by demo, %d remote models bound to their providers, no capability granted, litellm 1.82.7 and 1.82.8 denied; lint: no problems\n", polPath, pinned, served)
	dry := facts
	dry.IgnoreSignaturesUnsafe = true
	r := policy.Evaluate(p, dry)
	passed := 0
	for _, d := range r.Decisions {
		if d.Allowed {
			passed++
		}
	}
	fmt.Fprintf(out, "   policy test (dry run): %d of %d decisions pass\n", passed, len(r.Decisions))
	st, err := policy.Statement(polPath, text, p)
	if err != nil {
		return nil, err
	}
	raw, err := signJSON(cmd, st, key)
	if err != nil {
		return nil, err
	}
	bundlePath := polPath + ".bundle.json"
	if err := atomicfile.Write(bundlePath, raw, 0o644); err != nil {
		return nil, err
	}
	trust := policy.TrustRoot{Keys: []crypto.PublicKey{key.Public()}}
	state := &policy.State{Path: filepath.Join(dir, "policy-state.json")}
	loaded, err := policy.LoadSigned(polPath, text, raw, trust, name, state, now)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   signed it: %s (predicate %s); loaded back as a verifier does: signature, digest, expiry and version checked\n", bundlePath, attest.PredicatePolicy)
	return loaded, nil
}

// emptyTrustedRoot is a Sigstore trusted root that trusts no CA, log or
// timestamp authority: what cosign needs offline to check a key signature.
const emptyTrustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}
`

// demoAttest makes a throwaway key and signs the SBOM about the manifest and
// every component, as "trustgate sbom --attest --key" does.
func demoAttest(cmd *cobra.Command, dir string, kept bool, bom *cdx.BOM, data []byte) (*attest.Key, error) {
	out := cmd.OutOrStdout()
	key, err := attest.GenerateKey(attest.ECDSAP256)
	if err != nil {
		return nil, err
	}
	priv, err := key.MarshalPrivate(nil)
	if err != nil {
		return nil, err
	}
	pub, err := key.MarshalPublic()
	if err != nil {
		return nil, err
	}
	keyPath, pubPath := filepath.Join(dir, "demo.key"), filepath.Join(dir, "demo.pub")
	if err := atomicfile.Write(keyPath, priv, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(pubPath, pub, 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   made a throwaway ECDSA P-256 key: %s (unencrypted, for the demo only) and %s\n", keyPath, pubPath)
	st, err := sbom.Statement(bom, data)
	if err != nil {
		return nil, err
	}
	raw, err := signJSON(cmd, st, key)
	if err != nil {
		return nil, err
	}
	bundlePath := filepath.Join(dir, "sbom.cdx.json.bundle.json")
	if err := atomicfile.Write(bundlePath, raw, 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "   wrote %s: a Sigstore bundle (DSSE, in-toto Statement v1, predicate %s)\n", bundlePath, attest.PredicateCycloneDX)
	fmt.Fprintf(out, "   signed by key %s, about %d subjects:\n", key.Hint(), len(st.Subject))
	for _, s := range st.Subject {
		for alg, v := range s.Digest {
			fmt.Fprintf(out, "   - %s  %s:%s…\n", s.Name, alg, v[:12])
		}
	}
	if !kept {
		fmt.Fprintf(out, "\n   Run with --dir DIR to keep these files and check the bundle with cosign.\n")
		return key, nil
	}
	rootPath := filepath.Join(dir, "empty_trusted_root.json")
	if err := atomicfile.Write(rootPath, []byte(emptyTrustedRoot), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n   Check it with cosign (an empty trusted root is enough for a key):\n")
	fmt.Fprintf(out, "   cosign verify-blob-attestation --bundle %s --key %s --type cyclonedx \\\n", bundlePath, pubPath)
	fmt.Fprintf(out, "     --trusted-root %s --insecure-ignore-tlog=true %s\n", rootPath, filepath.Join(dir, "stack.yaml"))
	return key, nil
}

// printSummary prints what the SBOM says, read back from the BOM itself.
func printSummary(out io.Writer, bom *cdx.BOM) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   KIND\tNAME\tDIGEST\tPACKAGES\tFOR EXAMPLE")
	for _, c := range *bom.Components {
		n, sample := packages(c)
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\n", sbomprop.Get(c.Properties, sbomprop.Kind), c.Name,
			short(sbomprop.Get(c.Properties, sbomprop.Digest)), n, sample)
	}
	tw.Flush()
	if bom.Services != nil {
		fmt.Fprintln(out, "\n   Providers (credentials by reference only):")
		for _, s := range *bom.Services {
			fmt.Fprintf(out, "   - %s at %s, credential %s\n", s.Name, strings.Join(*s.Endpoints, ", "), sbomprop.Get(s.Properties, sbomprop.Credential))
		}
	}
}

func packages(c cdx.Component) (int, string) {
	if c.Components == nil {
		return 0, ""
	}
	var names []string
	for _, p := range *c.Components {
		if len(names) < 3 && p.Type != cdx.ComponentTypeOS {
			names = append(names, p.Name+"@"+p.Version)
		}
	}
	return len(*c.Components), strings.Join(names, " ")
}

// short abbreviates a digest for a table: algorithm and 12 characters.
func short(d string) string {
	alg, v, ok := strings.Cut(d, ":")
	if !ok || len(v) <= 12 {
		return d
	}
	return alg + ":" + v[:12] + "…"
}

// signJSON signs st with the demo's key, with no log or timestamp, and
// returns the bundle's JSON.
func signJSON(cmd *cobra.Command, st *attest.Statement, key *attest.Key) ([]byte, error) {
	b, err := attest.Sign(cmd.Context(), st, key, attest.Services{})
	if err != nil {
		return nil, err
	}
	return attest.MarshalBundle(b)
}
