package policy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// InitSigner is a signer for Init: a name and a PEM public key.
type InitSigner struct {
	Name string
	PEM  string
}

// InitValidity is how long a policy from Init is valid.
const InitValidity = 90 * 24 * time.Hour

// Init writes a starting policy for the deployment the facts describe
// (FactsFromSBOM): every component pinned to today's digest (and, without
// signers, the stack manifest too), every model bound to the provider and
// fallbacks that serve it today (and pinned, when it has a file), no
// signer, no
// capability granted, each credential bound to the one host the stack sends
// it to today, the known-compromised litellm releases denied, and comments
// that say what a person must review before signing it.
//
// Each of signers (a name and a PEM public key) is written inline, and every
// component then requires a CycloneDX attestation (the SBOM of `trustgate
// sbom --attest`) signed by one of them.
func Init(name string, f Facts, signers ...InitSigner) ([]byte, error) {
	var names []string
	for _, s := range signers {
		names = append(names, s.Name)
	}
	var buf bytes.Buffer
	err := initTemplate.Execute(&buf, map[string]any{
		"Signers": signers,
		"AnyOf":   strings.Join(names, ", "),
		"Name":    name,
		"Today":   f.Now.UTC().Format("2006-01-02"),
		"Expires": f.Now.UTC().Add(InitValidity).Truncate(time.Second).Format(time.RFC3339),
		"Facts":   f,
	})
	if err != nil {
		return nil, err
	}
	// What Init writes must load: check it before anyone sees it.
	if _, err := Parse("init", buf.Bytes(), Options{Now: f.Now}); err != nil {
		return nil, fmt.Errorf("policy init made a policy that does not load: %w", err)
	}
	return buf.Bytes(), nil
}

var initTemplate = template.Must(template.New("policy").Funcs(template.FuncMap{"q": strconv.Quote, "indent": indent}).Parse(
	`# trustgate policy for the deployment {{q .Name}}, written by trustgate policy init
# on {{.Today}} from what the deployment holds today. Review every REVIEW line,
# run trustgate policy lint, then sign it with trustgate policy sign.
apiVersion: trustgate.dev/v1
kind: Policy
metadata:
  name: {{q .Name}}
# REVIEW: raise the version with every change; verifiers refuse a lower one.
version: 1
# REVIEW: the policy stops being valid at this time; sign a new one before.
expires: {{q .Expires}}
# REVIEW: who may sign components and attestations. For example:
#   - name: release
#     key: |
#       -----BEGIN PUBLIC KEY-----
#       ...
#       -----END PUBLIC KEY-----
#   - name: ci
#     keyless:
#       issuer: https://token.actions.githubusercontent.com
#       subjectRegexp: ^https://github\.com/ORG/REPO/\.github/workflows/release\.yml@refs/heads/main$
# then require them per component with  signers: {anyOf: [release, ci]}
{{- if .Signers}}
signers:
{{- range .Signers}}
  - name: {{q .Name}}
    key: |
{{indent .PEM}}
{{- end}}
{{- else}}
signers: []
{{- end}}
# Anything the deployment runs or serves (a model) that is not named here is
# denied.
components:
{{- range .Facts.Components}}
  - name: {{q .Name}}
    kind: {{.Kind}}
{{- if .Role}}
    role: {{.Role}}
{{- end}}
{{- if .Provider}}
    # REVIEW: the model may be served by this provider only (and, when it
    # fails, by the fallbacks listed): any other is denied.
    provider: {{q .Provider}}
{{- if .Fallbacks}}
    fallbacks: [{{range $i, $f := .Fallbacks}}{{if $i}}, {{end}}{{q $f}}{{end}}]
{{- end}}
{{- end}}
{{- if .Digest}}
{{- if eq .Kind "model"}}
    # Its file or folder, pinned to today's digest. REVIEW: a model signed
    # with model_signing (an OMS signature, signature: in the stack) can be
    # bound to its signer instead, with signers: {anyOf: [NAME]}.
{{- else}}
    # Pinned to today's digest. REVIEW: add signers and attestations
    # (such as type: cyclonedx) so that a new release can pass without a
    # new policy.
{{- end}}
    digests: [{{q .Digest}}]
{{- if $.AnyOf}}
    attestations: [{type: cyclonedx, signers: {anyOf: [{{$.AnyOf}}]}}]
{{- end}}
{{- end}}
{{- if or (eq .Kind "plugin") (eq .Kind "agent")}}
    # Grants nothing: no environment variable, no provider credential, no
    # hook. REVIEW: list what it needs under env, credentials and hooks.
    capabilities: {}
{{- end}}
{{- end}}
{{- if and (not .Signers) .Facts.Manifest}}
# The stack manifest says what runs, how each component is started and where
# each credential goes: without a signer to sign it, it is pinned to today's
# digest. REVIEW: add signers, and sign the manifest with trustgate sbom
# --attest, so that a changed manifest can pass without a new policy.
manifest:
  digests: [{{q .Facts.Manifest.Digest}}]
{{- end}}
# Each credential may be sent only to the base URL the stack uses today.
# REVIEW: a config that points a key anywhere else is refused.
providers:
{{- range .Facts.Providers}}
  - name: {{q .Name}}
    credential: {{q .Credential}}
    baseURLs: [{{q .BaseURL}}]
{{- end}}
sbom:
  deny:
    # The litellm releases that stole every credential on the host (2026).
    - purl: pkg:pypi/litellm
      versions: ">=1.82.7,<=1.82.8"
      reason: compromised releases 1.82.7 and 1.82.8
  require: [metadata.component, components.hashes]
  # REVIEW: add CEL rules for anything else, for example
  #   rules:
  #     - name: no-npm-in-plugins
  #       kinds: [plugin]
  #       expression: component.packages.all(p, p.type != "npm")
`))

// indent puts a PEM block under "key: |" in the template.
func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "      " + l
	}
	return strings.Join(lines, "\n")
}
