package policy

import (
	"crypto"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/trustgate/trustgate/bundle"
	"github.com/trustgate/trustgate/digest"
)

// APIVersion and Kind are the only values a policy may declare.
const (
	APIVersion = "trustgate.dev/v1"
	Kind       = "Policy"
)

// Modes say what a failed check does to a component.
const (
	ModeEnforce = "enforce" // the component is denied (the default)
	ModeAudit   = "audit"   // the failure is reported, the component allowed
)

// Policy is a parsed, checked policy. Get one from Parse or LoadSigned; the
// zero value names nothing and so denies everything.
type Policy struct {
	APIVersion string      `yaml:"apiVersion" json:"apiVersion"`
	Kind       string      `yaml:"kind" json:"kind"`
	Metadata   Metadata    `yaml:"metadata" json:"metadata"`
	Version    uint64      `yaml:"version" json:"version"`
	Expires    string      `yaml:"expires" json:"expires"`
	Signers    []Signer    `yaml:"signers,omitempty" json:"signers,omitempty"`
	Components []Component `yaml:"components,omitempty" json:"components,omitempty"`
	Providers  []Provider  `yaml:"providers,omitempty" json:"providers,omitempty"`
	SBOM       SBOMRules   `yaml:"sbom,omitempty" json:"sbom,omitempty"`
	// Manifest says what binds the stack manifest (which components run,
	// how each is started, where each credential goes) to the signer's
	// intent. Without it, the manifest's digest must be a subject of an
	// attestation that vouches for it (an SBOM from trustgate sbom
	// --attest, a provenance) signed by any of the policy's signers.
	Manifest *ManifestRule `yaml:"manifest,omitempty" json:"manifest,omitempty"`
	// Default is the mode for a component the policy does not name:
	// ModeEnforce (the default: denied) or ModeAudit, the words a
	// component's mode uses. "deny", the earlier word, means enforce.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// OnAuditFailure says what trustgate-gateway does while its audit log
	// cannot be written (a full disk, a slow disk the bounded queue cannot
	// wait for): AuditRefuse (the default) answers every API request 503
	// until it can again; AuditContinue serves on and reports it in the
	// log, the metrics and the status.
	OnAuditFailure string `yaml:"onAuditFailure,omitempty" json:"onAuditFailure,omitempty"`

	// Set by Parse.
	expires time.Time
	source  Source
}

// Source is where a policy was read from.
type Source struct {
	File   string
	Digest digest.Digest // SHA-256 of the policy's bytes
}

// Metadata names the policy.
type Metadata struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Signer is someone whose signature counts: a public key, or a keyless
// identity (an OIDC issuer and a certificate subject, each exact or an
// anchored regular expression, as cosign's --certificate-identity flags).
type Signer struct {
	Name    string    `yaml:"name" json:"name"`
	Key     string    `yaml:"key,omitempty" json:"key,omitempty"`         // PEM public key
	KeyFile string    `yaml:"keyFile,omitempty" json:"keyFile,omitempty"` // PEM file, relative to the policy
	Keyless *Identity `yaml:"keyless,omitempty" json:"keyless,omitempty"`

	publicKey crypto.PublicKey
}

// Identity is a keyless signer's certificate identity (see
// bundle.Identity: trustgate has one identity type).
type Identity = bundle.Identity

// SignerRule asks for signatures from at least Threshold (k) of the n
// signers named in AnyOf; a Threshold of 0 means 1.
type SignerRule struct {
	AnyOf     []string `yaml:"anyOf" json:"anyOf"`
	Threshold int      `yaml:"threshold,omitempty" json:"threshold,omitempty"`
}

// Component is what the policy allows for one component of the stack,
// matched by kind and name (and role, when given).
type Component struct {
	Name string `yaml:"name" json:"name"`
	// Kind is gateway, plugin, agent, image or model.
	Kind string `yaml:"kind" json:"kind"`
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// Mode is enforce (default) or audit.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Digests, when given, are the only acceptable digests: sha256:<hex>
	// for files and images, h1:<base64> for directories.
	Digests []string `yaml:"digests,omitempty" json:"digests,omitempty"`
	// Signers, when given, must have signed the component.
	Signers *SignerRule `yaml:"signers,omitempty" json:"signers,omitempty"`
	// Attestations must exist for the component.
	Attestations []AttestationRule `yaml:"attestations,omitempty" json:"attestations,omitempty"`
	// Capabilities are what the component may receive; nothing by default.
	Capabilities Capabilities `yaml:"capabilities,omitempty" json:"capabilities,omitempty"`
	// Optional lets the deployment run without this component. By default
	// every component the policy names must be present: deleting a
	// guardrail from the manifest is a denial, not a way around it.
	Optional bool `yaml:"optional,omitempty" json:"optional,omitempty"`
	// OnDrift says what trustgate-gateway does when a running plugin's or
	// agent's files, or a local model's, stop matching what was verified:
	// OnDriftDisable (the default) marks it failed and never restarts it
	// from the changed bytes (a model: no request is routed to it again
	// until the gateway restarts and verifies it); OnDriftStop stops the
	// gateway.
	OnDrift string `yaml:"onDrift,omitempty" json:"onDrift,omitempty"`
	// Interpreter, for a plugin or agent started by an interpreter (a
	// Python folder), pins the interpreter's executable by digest. Without
	// it the interpreter is measured and reported, not pinned.
	Interpreter *InterpreterRule `yaml:"interpreter,omitempty" json:"interpreter,omitempty"`
	// FailOpen lets requests through, for a plugin, when the plugin errs
	// or misses its deadline. By default such a request is refused (fail
	// closed).
	FailOpen bool `yaml:"failOpen,omitempty" json:"failOpen,omitempty"`
	// Provider, for a model, is the provider (a name from the stack
	// manifest's providers) that must serve it: a model served by another
	// provider, or by none (a local model), is denied, and so is a model
	// served by a provider when the entry names none. Fallbacks are the
	// other providers it may fall back to; any other fallback is denied.
	// A model entry gives provider, digests or signers (a local model's
	// file or folder: digests pin it, signers take its OMS signature).
	Provider  string   `yaml:"provider,omitempty" json:"provider,omitempty"`
	Fallbacks []string `yaml:"fallbacks,omitempty" json:"fallbacks,omitempty"`
	// Repositories, for an image, are the registry repositories the
	// image is pulled from, as the admission webhook matches a pod's
	// image to this entry (see Policy.ImageComponent): each a repository
	// with its registry host (ghcr.io/acme/gateway), where * stands for
	// one path segment or part of one, and a final /** for any path
	// below. docker.io is Docker Hub (index.docker.io).
	Repositories []string `yaml:"repositories,omitempty" json:"repositories,omitempty"`

	digests []digest.Digest
}

// What trustgate-gateway does while its audit log fails (OnAuditFailure).
const (
	AuditRefuse   = "refuse"
	AuditContinue = "continue"
)

// What trustgate-gateway does on drift (Component.OnDrift).
const (
	OnDriftDisable = "disable"
	OnDriftStop    = "stop"
)

// InterpreterRule lists the acceptable digests (sha256:<hex>) of the
// interpreter executable that runs a component.
type InterpreterRule struct {
	Digests []string `yaml:"digests" json:"digests"`
}

// DriftAction is c's OnDrift with the default applied.
func (c *Component) DriftAction() string {
	if c == nil || c.OnDrift == "" {
		return OnDriftDisable
	}
	return c.OnDrift
}

// ManifestRule binds the stack manifest: to one of Digests (sha256 of the
// file), to a signature by Signers, or to both when both are given.
type ManifestRule struct {
	Digests []string    `yaml:"digests,omitempty" json:"digests,omitempty"`
	Signers *SignerRule `yaml:"signers,omitempty" json:"signers,omitempty"`
}

// AttestationRule requires an attestation of one predicate type, signed as
// Signers says, and for SLSA provenance made by Builder from
// SourceRepository.
type AttestationRule struct {
	Type             string      `yaml:"type" json:"type"`
	Signers          *SignerRule `yaml:"signers,omitempty" json:"signers,omitempty"`
	Builder          string      `yaml:"builder,omitempty" json:"builder,omitempty"`
	SourceRepository string      `yaml:"sourceRepository,omitempty" json:"sourceRepository,omitempty"`

	predicateType string
}

// Capabilities are what a plugin or agent may be given.
type Capabilities struct {
	// Env lists environment variables passed through from the gateway's
	// environment.
	Env []string `yaml:"env,omitempty" json:"env,omitempty"`
	// Credentials lists provider credentials (env:NAME or file:PATH, as in
	// the stack manifest) the component may receive.
	Credentials []string `yaml:"credentials,omitempty" json:"credentials,omitempty"`
	// Hooks lists the gateway hooks a plugin may use.
	Hooks []string `yaml:"hooks,omitempty" json:"hooks,omitempty"`
}

// Hooks a plugin may be granted.
var Hooks = []string{"pre_request", "post_request", "pre_response", "post_response", "audit"}

// Provider binds a credential to the upstream base URLs it may be sent to.
// Its Name, when given, binds the stack manifest's provider of that name
// (which a model's provider names) to this credential: a provider of that
// name that is sent another credential is denied, so that a model bound to
// a provider cannot be moved to another upstream by renaming providers.
type Provider struct {
	Name       string   `yaml:"name,omitempty" json:"name,omitempty"`
	Credential string   `yaml:"credential" json:"credential"`
	BaseURLs   []string `yaml:"baseURLs" json:"baseURLs"`
}

// SBOMRules apply to the packages the SBOM lists under each component.
type SBOMRules struct {
	Deny    []PackageRule `yaml:"deny,omitempty" json:"deny,omitempty"`
	Require []string      `yaml:"require,omitempty" json:"require,omitempty"`
	Rules   []CELRule     `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// PackageRule denies a package (a purl without version) in a version range
// written in its ecosystem's scheme: PEP 440 specifiers for pypi, semver
// constraints for golang, npm and cargo; "*" or empty for every version.
type PackageRule struct {
	Purl     string `yaml:"purl" json:"purl"`
	Versions string `yaml:"versions,omitempty" json:"versions,omitempty"`
	Reason   string `yaml:"reason,omitempty" json:"reason,omitempty"`

	match              versionMatcher
	purlType, purlName string
}

// CELRule is a CEL expression that must evaluate to true for each
// component it applies to (all, or those of the listed kinds).
type CELRule struct {
	Name       string   `yaml:"name" json:"name"`
	Expression string   `yaml:"expression" json:"expression"`
	Message    string   `yaml:"message,omitempty" json:"message,omitempty"`
	Kinds      []string `yaml:"kinds,omitempty" json:"kinds,omitempty"`

	program cel.Program
}

// Component returns the policy's entry for the component of this kind and
// name, or nil when the policy does not name it.
func (p *Policy) Component(kind, name string) *Component {
	_, c := p.lookup(kind, name)
	return c
}

// PredicateType is the rule's predicate type as a URI (cyclonedx is
// https://cyclonedx.org/bom, and so on).
func (a *AttestationRule) PredicateType() string { return a.predicateType }

// Source says where the policy came from.
func (p *Policy) Source() Source { return p.source }

// ExpiresAt is the policy's expiry time.
func (p *Policy) ExpiresAt() time.Time { return p.expires }

// PublicKey is a key signer's parsed public key, nil for a keyless signer.
func (s *Signer) PublicKey() crypto.PublicKey { return s.publicKey }
