package stack

import (
	"time"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/yamlx"
)

// APIVersion and Kind are the only values a manifest may declare.
const (
	APIVersion = "trustgate.dev/v1"
	Kind       = "Stack"
)

// Stack is one gateway deployment as its manifest describes it.
type Stack struct {
	APIVersion string      `yaml:"apiVersion" json:"apiVersion"`
	Kind       string      `yaml:"kind" json:"kind"`
	Metadata   Metadata    `yaml:"metadata" json:"metadata"`
	Gateway    Component   `yaml:"gateway" json:"gateway"`
	Plugins    []Component `yaml:"plugins,omitempty" json:"plugins,omitempty"`
	Agents     []Component `yaml:"agents,omitempty" json:"agents,omitempty"`
	Providers  []Provider  `yaml:"providers,omitempty" json:"providers,omitempty"`
	Models     []Model     `yaml:"models,omitempty" json:"models,omitempty"`
	Images     []Image     `yaml:"images,omitempty" json:"images,omitempty"`
	// GatewayConfig is what only trustgate-gateway reads. It is part of
	// the manifest, so whatever binds the manifest (a signature or the
	// policy's pin) binds it too.
	GatewayConfig GatewayConfig `yaml:"gatewayConfig,omitempty" json:"gatewayConfig,omitempty"`

	// Source describes where the manifest was read from; Load sets it.
	Source Source `yaml:"-" json:"-"`
}

// Source is where a manifest came from.
type Source struct {
	// File is the manifest path as the caller gave it, for messages.
	File string
	// Dir is the absolute folder that every path in the manifest is
	// relative to, and may not leave.
	Dir string
	// Digest is the SHA-256 of the manifest's bytes.
	Digest digest.Digest
}

// Metadata names the deployment.
type Metadata struct {
	Name        string `yaml:"name" json:"name"`
	Version     string `yaml:"version,omitempty" json:"version,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Kinds of component, as the policy matches them.
const (
	KindGateway = "gateway"
	KindPlugin  = "plugin"
	KindAgent   = "agent"
	KindModel   = "model" // a Model: not a Component, it runs nothing
)

// Roles a component may declare. The gateway's role is always "gateway".
const (
	RoleGateway    = "gateway"
	RoleGuardrail  = "guardrail"  // plugin: may block or redact a request or response
	RoleTransform  = "transform"  // plugin: rewrites a request or response
	RoleCompliance = "compliance" // agent: receives audit events for a compliance vendor
	RoleAudit      = "audit"      // agent: ships or stores the audit log
)

// Component is the gateway, a plugin or an agent: something that runs.
// Exactly one of Path and Image is set.
type Component struct {
	Name    string `yaml:"name" json:"name"`
	Role    string `yaml:"role,omitempty" json:"role,omitempty"`
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	// Path is an executable file, or a directory (a Python plugin, say)
	// started by Command, relative to the manifest's folder.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Image names an entry of the manifest's images the component runs from.
	Image string `yaml:"image,omitempty" json:"image,omitempty"`
	// Command is the program to run (argv[0] and fixed arguments); empty
	// means Path itself. It is required when Path is a directory, and then
	// runs with the directory as its working directory.
	Command []string `yaml:"command,omitempty" json:"command,omitempty"`
	Args    []string `yaml:"args,omitempty" json:"args,omitempty"`

	// Kind is KindGateway, KindPlugin or KindAgent; Load sets it.
	Kind string `yaml:"-" json:"kind"`
}

// Argv is how the component is started: its command, then its args (nil
// when it has neither, and runs as Path).
func (c Component) Argv() []string {
	if len(c.Command) == 0 && len(c.Args) == 0 {
		return nil
	}
	return append(append([]string{}, c.Command...), c.Args...)
}

// Provider is an upstream model API and the credential it is called with.
type Provider struct {
	Name       string        `yaml:"name" json:"name"`
	BaseURL    string        `yaml:"baseURL" json:"baseURL"`
	Credential CredentialRef `yaml:"credential" json:"credential"`
	// API is the upstream's protocol: APIOpenAI (the default: OpenAI and
	// the servers that speak its API, such as vLLM and Ollama) or
	// APIAnthropic (Anthropic's Messages API, which the gateway translates
	// to and from OpenAI's chat completions).
	API string `yaml:"api,omitempty" json:"api,omitempty"`
	// Timeout bounds one upstream request, from sending it to the end of
	// the answer; a Go duration, default 120s.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Upstream protocols (Provider.API).
const (
	APIOpenAI    = "openai"
	APIAnthropic = "anthropic"
)

// CredentialRef says where a credential is found at run time; never what it
// is. Exactly one field is set.
type CredentialRef struct {
	// Env is the name of an environment variable (upper case, digits, _).
	Env string `yaml:"env,omitempty" json:"env,omitempty"`
	// File is the absolute path of a file holding the credential where the
	// gateway runs (a mounted secret, say). trustgate never reads it while
	// inventorying.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// String names the reference without any secret: "env:NAME" or "file:PATH".
func (c CredentialRef) String() string {
	if c.Env != "" {
		return "env:" + c.Env
	}
	return "file:" + c.File
}

// Model is a model the deployment serves: remote through a provider, local
// from a model file or folder, or both (a local server, named as a
// provider, that serves the file).
type Model struct {
	Name     string `yaml:"name" json:"name"`
	Version  string `yaml:"version,omitempty" json:"version,omitempty"`
	Provider string `yaml:"provider,omitempty" json:"provider,omitempty"`
	// Fallbacks are other providers that serve the model, tried in order
	// when Provider fails before answering.
	Fallbacks []string `yaml:"fallbacks,omitempty" json:"fallbacks,omitempty"`
	// File is the model's file, or its folder (a Hugging Face snapshot,
	// say), relative to the manifest's folder. It is measured by its
	// SHA-256 (a file) or its h1 tree digest (a folder), or, when
	// Signature is given, as that signature serializes it.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Signature is the model's OpenSSF model signature (OMS: the Sigstore
	// bundle `model_signing sign` writes, model.sig by default), relative
	// to the manifest's folder. It may lie inside the model's folder, and
	// is then left out of the model, as model_signing does. With it the
	// model is measured as the signature serializes it (package
	// localmodel), and the signature is evidence for the policy's signer
	// rules. It needs File.
	Signature string     `yaml:"signature,omitempty" json:"signature,omitempty"`
	Card      *ModelCard `yaml:"card,omitempty" json:"card,omitempty"`
}

// ModelCard is the part of a CycloneDX model card a manifest may give.
type ModelCard struct {
	Task               string   `yaml:"task,omitempty" json:"task,omitempty"`
	ArchitectureFamily string   `yaml:"architectureFamily,omitempty" json:"architectureFamily,omitempty"`
	ModelArchitecture  string   `yaml:"modelArchitecture,omitempty" json:"modelArchitecture,omitempty"`
	License            string   `yaml:"license,omitempty" json:"license,omitempty"`
	Description        string   `yaml:"description,omitempty" json:"description,omitempty"`
	UseCases           []string `yaml:"useCases,omitempty" json:"useCases,omitempty"`
	Limitations        []string `yaml:"limitations,omitempty" json:"limitations,omitempty"`
}

// Image is a container image of the deployment. Exactly one source is set.
type Image struct {
	Name string `yaml:"name" json:"name"`
	// Ref is a registry reference (a tag or a digest).
	Ref string `yaml:"ref,omitempty" json:"ref,omitempty"`
	// OCILayout is a folder in the OCI image layout holding one image.
	OCILayout string `yaml:"ociLayout,omitempty" json:"ociLayout,omitempty"`
	// Archive is a tarball written by "docker save".
	Archive string `yaml:"archive,omitempty" json:"archive,omitempty"`
}

// GatewayConfig is trustgate-gateway's own configuration. Every field is
// optional; the zero value means the defaults each field names. Durations
// are Go durations ("30s", "2m").
type GatewayConfig struct {
	// Listen is the address the gateway binds once everything verified;
	// default DefaultListen.
	Listen string `yaml:"listen,omitempty" json:"listen,omitempty"`
	// ClientKeys is the absolute path of the file of client keys (salted
	// hashes) that callers authenticate with.
	ClientKeys string `yaml:"clientKeys,omitempty" json:"clientKeys,omitempty"`
	// AuditLog is the absolute path of the gateway's audit log: a
	// hash-chained JSON-lines file (package audit). It needs AuditKey.
	AuditLog string `yaml:"auditLog,omitempty" json:"auditLog,omitempty"`
	// AuditKey is the absolute path of the PEM private key (unencrypted,
	// mode 0600) that signs the audit log's checkpoints.
	AuditKey string `yaml:"auditKey,omitempty" json:"auditKey,omitempty"`
	// RecheckInterval is how often plugins and agents are hashed again
	// while running (besides on file change); default 30s.
	RecheckInterval string `yaml:"recheckInterval,omitempty" json:"recheckInterval,omitempty"`
	// ReadHeaderTimeout, IdleTimeout and ShutdownTimeout bound the HTTP
	// server; defaults 10s, 120s and 10s.
	ReadHeaderTimeout string `yaml:"readHeaderTimeout,omitempty" json:"readHeaderTimeout,omitempty"`
	IdleTimeout       string `yaml:"idleTimeout,omitempty" json:"idleTimeout,omitempty"`
	ShutdownTimeout   string `yaml:"shutdownTimeout,omitempty" json:"shutdownTimeout,omitempty"`
}

// DefaultListen is the gateway's listen address when the manifest gives none.
const DefaultListen = "127.0.0.1:8080"

// Duration parses one of the config's duration fields, giving def for an
// empty one. Load has already refused a value that does not parse.
func (g GatewayConfig) Duration(value string, def time.Duration) time.Duration {
	if value == "" {
		return def
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return def
	}
	return d
}

// Components returns the gateway, then the plugins, then the agents.
func (s *Stack) Components() []Component {
	out := make([]Component, 0, 1+len(s.Plugins)+len(s.Agents))
	out = append(out, s.Gateway)
	out = append(out, s.Plugins...)
	return append(out, s.Agents...)
}

// Image returns the image entry called name.
func (s *Stack) Image(name string) (Image, bool) {
	for _, im := range s.Images {
		if im.Name == name {
			return im, true
		}
	}
	return Image{}, false
}

// FieldError is the error Load returns: a field, its line, and what is wrong.
type FieldError = yamlx.FieldError
