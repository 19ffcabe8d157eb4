package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/internal/yamlx"

	"github.com/trustgate/trustgate/internal/readfile"
)

// MaxManifestSize bounds the manifest file Load will read.
const MaxManifestSize = 1 << 20

// Kinds of error Load returns, inside a *FieldError. Match with errors.Is;
// the YAML-level kinds (unknown field, duplicate key, wrong type, alias) are
// yamlx's and are re-exported here.
var (
	ErrUnknownField = yamlx.ErrUnknownField
	ErrDuplicateKey = yamlx.ErrDuplicateKey
	ErrWrongType    = yamlx.ErrWrongType
	ErrSyntax       = yamlx.ErrSyntax
	ErrTooLarge     = yamlx.ErrTooLarge
	ErrAlias        = yamlx.ErrAlias

	// ErrRequired: a field that must be set is missing.
	ErrRequired = errors.New("required")
	// ErrInvalid: a value is not of the allowed form.
	ErrInvalid = errors.New("invalid value")
	// ErrDuplicateName: two entries of one kind share a name.
	ErrDuplicateName = errors.New("duplicate name")
	// ErrUnknownReference: a field names an entry that does not exist.
	ErrUnknownReference = errors.New("unknown reference")
	// ErrPathEscape: a path is absolute, climbs out with "..", or goes
	// through a symbolic link that leads out of the manifest's folder.
	ErrPathEscape = errors.New("path escapes the manifest's folder")
	// ErrMissingFile: a path names nothing, or the wrong kind of file.
	ErrMissingFile = errors.New("missing file")
	// ErrLiteralCredential: a secret is written in the manifest instead of
	// a reference to where it is kept.
	ErrLiteralCredential = errors.New("credential written as a value")
)

// Load reads, parses and checks the manifest at file. Paths in it resolve
// against the manifest's folder.
func Load(file string) (*Stack, error) {
	// One byte over the limit is read, so that yamlx reports the size.
	data, err := readfile.Read(file, MaxManifestSize+1)
	if errors.Is(err, readfile.ErrTooLarge) {
		return nil, &FieldError{File: file, Err: fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, MaxManifestSize)}
	}
	if err != nil {
		return nil, fmt.Errorf("reading stack manifest: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("reading stack manifest %q: %w", file, err)
	}
	return Parse(file, dir, data)
}

// Parse parses and checks manifest bytes. name labels errors; dir is the
// folder paths resolve against.
func Parse(name, dir string, data []byte) (*Stack, error) {
	doc, err := yamlx.Parse(name, data, MaxManifestSize)
	if err != nil {
		return nil, err
	}
	// Secrets first: a key pasted in the wrong place must be reported as
	// such, whatever else is wrong with the document.
	if err := scanSecrets(name, doc); err != nil {
		return nil, err
	}
	var s Stack
	ix, err := doc.Decode(&s)
	if err != nil {
		return nil, err
	}
	s.Source = Source{File: name, Dir: dir, Digest: digest.FromBytes(data)}
	s.Gateway.Kind = KindGateway
	for i := range s.Plugins {
		s.Plugins[i].Kind = KindPlugin
	}
	for i := range s.Agents {
		s.Agents[i].Kind = KindAgent
	}
	c := checker{ix: ix, s: &s}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// scanSecrets looks at every value, key and comment of the document.
func scanSecrets(name string, doc *yamlx.Document) error {
	var found *FieldError
	doc.Texts(func(t yamlx.Text) bool {
		if label := looksLikeSecret(t.Value); label != "" {
			found = &FieldError{File: name, Line: t.Line, Field: t.Path, Err: fmt.Errorf(
				"%w: this looks like %s; reference it with credential: {env: NAME} or {file: PATH}", ErrLiteralCredential, label)}
			return false
		}
		return true
	})
	if found != nil {
		return found
	}
	return nil
}

var (
	namePattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	modelNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}$`)
	envNamePattern   = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)
)

type checker struct {
	ix *yamlx.Index
	s  *Stack
	// root is the manifest's folder, opened so that no lookup leaves it.
	root *os.Root
}

func (c *checker) fail(field string, kind error, format string, args ...any) error {
	return c.ix.Errorf(field, kind, format, args...)
}

func (c *checker) check() error {
	s := c.s
	if s.APIVersion != APIVersion {
		return c.fail("apiVersion", ErrInvalid, "want %q", APIVersion)
	}
	if s.Kind != Kind {
		return c.fail("kind", ErrInvalid, "want %q", Kind)
	}
	if s.Metadata.Name == "" {
		return c.fail("metadata.name", ErrRequired, "")
	}
	if !namePattern.MatchString(s.Metadata.Name) {
		return c.fail("metadata.name", ErrInvalid, "want lower-case letters, digits and '-', at most 63")
	}
	root, err := os.OpenRoot(s.Source.Dir)
	if err != nil {
		return &FieldError{File: s.Source.File, Err: fmt.Errorf("opening the manifest's folder: %w", err)}
	}
	defer root.Close()
	c.root = root

	for _, check := range []func() error{c.images, c.components, c.providers, c.models, c.gatewayConfig} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) images() error {
	seen := map[string]bool{}
	for i, im := range c.s.Images {
		at := fmt.Sprintf("images[%d]", i)
		if err := c.name(at, im.Name, seen); err != nil {
			return err
		}
		set := 0
		for _, v := range []string{im.Ref, im.OCILayout, im.Archive} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			return c.fail(at, ErrInvalid, "set exactly one of ref, ociLayout and archive")
		}
		switch {
		case im.Ref != "":
			if _, err := name.ParseReference(im.Ref, name.StrictValidation); err != nil {
				return c.fail(at+".ref", ErrInvalid, "not an image reference with an explicit tag or digest")
			}
		case im.OCILayout != "":
			if err := c.path(at+".ociLayout", im.OCILayout, wantDir); err != nil {
				return err
			}
		default:
			if err := c.path(at+".archive", im.Archive, wantFile); err != nil {
				return err
			}
		}
	}
	return nil
}

var roles = map[string][]string{
	KindGateway: {RoleGateway},
	KindPlugin:  {RoleGuardrail, RoleTransform},
	KindAgent:   {RoleCompliance, RoleAudit},
}

func (c *checker) components() error {
	if c.s.Gateway.Name == "" && c.s.Gateway.Path == "" && c.s.Gateway.Image == "" {
		return c.fail("gateway", ErrRequired, "")
	}
	if c.s.Gateway.Role == "" {
		c.s.Gateway.Role = RoleGateway
	}
	seen := map[string]bool{}
	if err := c.component("gateway", &c.s.Gateway, seen); err != nil {
		return err
	}
	for i := range c.s.Plugins {
		if err := c.component(fmt.Sprintf("plugins[%d]", i), &c.s.Plugins[i], seen); err != nil {
			return err
		}
	}
	for i := range c.s.Agents {
		if err := c.component(fmt.Sprintf("agents[%d]", i), &c.s.Agents[i], seen); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) component(at string, comp *Component, seen map[string]bool) error {
	if err := c.name(at, comp.Name, seen); err != nil {
		return err
	}
	allowed := roles[comp.Kind]
	if comp.Role == "" {
		return c.fail(at+".role", ErrRequired, "one of %s", strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, comp.Role) {
		return c.fail(at+".role", ErrInvalid, "a %s's role is one of %s", comp.Kind, strings.Join(allowed, ", "))
	}
	switch {
	case comp.Path != "" && comp.Image != "":
		return c.fail(at, ErrInvalid, "set path or image, not both")
	case comp.Image != "":
		if _, ok := c.s.Image(comp.Image); !ok {
			return c.fail(at+".image", ErrUnknownReference, "no entry of images has this name")
		}
	case comp.Path != "":
		isDir, err := c.pathKind(at+".path", comp.Path)
		if err != nil {
			return err
		}
		if isDir && len(comp.Command) == 0 {
			return c.fail(at+".command", ErrRequired, "path is a directory, so say how to start it")
		}
	default:
		return c.fail(at+".path", ErrRequired, "set path or image")
	}
	for j, a := range comp.Command {
		if a == "" {
			return c.fail(fmt.Sprintf("%s.command[%d]", at, j), ErrInvalid, "empty")
		}
	}
	return nil
}

func (c *checker) providers() error {
	seen := map[string]bool{}
	for i, p := range c.s.Providers {
		at := fmt.Sprintf("providers[%d]", i)
		if err := c.name(at, p.Name, seen); err != nil {
			return err
		}
		if err := checkBaseURL(p.BaseURL); err != nil {
			return c.fail(at+".baseURL", ErrInvalid, "%s", err)
		}
		if err := c.credential(at+".credential", p.Credential); err != nil {
			return err
		}
		switch p.API {
		case "", APIOpenAI, APIAnthropic:
		default:
			return c.fail(at+".api", ErrInvalid, "want %s or %s", APIOpenAI, APIAnthropic)
		}
		if p.Timeout != "" {
			if d, err := time.ParseDuration(p.Timeout); err != nil || d <= 0 {
				return c.fail(at+".timeout", ErrInvalid, "want a positive duration such as 60s")
			}
		}
	}
	return nil
}

func (c *checker) credential(at string, ref CredentialRef) error {
	switch {
	case ref.Env == "" && ref.File == "":
		return c.fail(at, ErrRequired, "set env or file")
	case ref.Env != "" && ref.File != "":
		return c.fail(at, ErrInvalid, "set env or file, not both")
	case ref.Env != "":
		if !envNamePattern.MatchString(ref.Env) {
			return c.fail(at+".env", ErrLiteralCredential, "not an environment variable name (upper-case letters, digits and _); write the variable's name, never its value")
		}
	default:
		if !path.IsAbs(ref.File) || path.Clean(ref.File) != ref.File {
			return c.fail(at+".file", ErrInvalid, "want a clean absolute path where the gateway runs")
		}
	}
	return nil
}

// checkBaseURL accepts https URLs, and http only to a loopback host. A URL
// may not carry credentials, a query or a fragment: that is where keys hide.
func checkBaseURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.User != nil {
		return errors.New("a base URL may not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return errors.New("a base URL may not have a query or fragment")
	}
	if u.Host == "" || u.Opaque != "" {
		return errors.New("want scheme://host[/path]")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("plain http is allowed only to a loopback host; use https")
	default:
		return errors.New("want an https URL")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *checker) models() error {
	seen := map[string]bool{}
	providers := map[string]bool{}
	for _, p := range c.s.Providers {
		providers[p.Name] = true
	}
	for i, m := range c.s.Models {
		at := fmt.Sprintf("models[%d]", i)
		if m.Name == "" {
			return c.fail(at+".name", ErrRequired, "")
		}
		if !modelNamePattern.MatchString(m.Name) {
			return c.fail(at+".name", ErrInvalid, "want letters, digits and ._:/@+-, at most 255")
		}
		if seen[m.Name] {
			return c.fail(at+".name", ErrDuplicateName, "")
		}
		seen[m.Name] = true
		if m.Provider == "" && m.File == "" {
			return c.fail(at, ErrRequired, "set provider, file or both")
		}
		if m.Provider != "" && !providers[m.Provider] {
			return c.fail(at+".provider", ErrUnknownReference, "no entry of providers has this name")
		}
		if len(m.Fallbacks) > 0 && m.Provider == "" {
			return c.fail(at+".fallbacks", ErrInvalid, "a model without a provider has nothing to fall back from")
		}
		for j, f := range m.Fallbacks {
			if !providers[f] {
				return c.fail(fmt.Sprintf("%s.fallbacks[%d]", at, j), ErrUnknownReference, "no entry of providers has this name")
			}
			if f == m.Provider || slices.Contains(m.Fallbacks[:j], f) {
				return c.fail(fmt.Sprintf("%s.fallbacks[%d]", at, j), ErrDuplicateName, "named twice")
			}
		}
		if m.File != "" {
			if _, err := c.pathKind(at+".file", m.File); err != nil {
				return err
			}
		}
		if m.Signature != "" {
			if m.File == "" {
				return c.fail(at+".signature", ErrInvalid, "a signature signs the model's file or folder: set file too")
			}
			if err := c.path(at+".signature", m.Signature, wantFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// gatewayConfig checks the gateway's own section: a listen address with a
// port, absolute clean paths, positive durations.
func (c *checker) gatewayConfig() error {
	g := c.s.GatewayConfig
	const at = "gatewayConfig"
	if g.Listen != "" {
		if _, port, err := net.SplitHostPort(g.Listen); err != nil || port == "" {
			return c.fail(at+".listen", ErrInvalid, "want host:port")
		}
	}
	if (g.AuditLog == "") != (g.AuditKey == "") {
		return c.fail(at, ErrInvalid, "auditLog and auditKey go together")
	}
	for field, p := range map[string]string{"clientKeys": g.ClientKeys, "auditLog": g.AuditLog, "auditKey": g.AuditKey} {
		if p != "" && (!path.IsAbs(p) || path.Clean(p) != p) {
			return c.fail(at+"."+field, ErrInvalid, "want a clean absolute path where the gateway runs")
		}
	}
	for field, v := range map[string]string{
		"recheckInterval": g.RecheckInterval, "readHeaderTimeout": g.ReadHeaderTimeout,
		"idleTimeout": g.IdleTimeout, "shutdownTimeout": g.ShutdownTimeout,
	} {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return c.fail(at+"."+field, ErrInvalid, "want a positive duration such as 30s")
		}
	}
	return nil
}

func (c *checker) name(at, n string, seen map[string]bool) error {
	if n == "" {
		return c.fail(at+".name", ErrRequired, "")
	}
	if !namePattern.MatchString(n) {
		return c.fail(at+".name", ErrInvalid, "want lower-case letters, digits and '-', at most 63")
	}
	if seen[n] {
		return c.fail(at+".name", ErrDuplicateName, "another entry has this name")
	}
	seen[n] = true
	return nil
}

type fileKind int

const (
	wantFile fileKind = iota
	wantDir
)

func (c *checker) path(at, p string, want fileKind) error {
	isDir, err := c.pathKind(at, p)
	if err != nil {
		return err
	}
	if want == wantDir && !isDir {
		return c.fail(at, ErrMissingFile, "not a directory")
	}
	if want == wantFile && isDir {
		return c.fail(at, ErrMissingFile, "a directory, want a file")
	}
	return nil
}

// pathKind checks that p is a local path naming a regular file or a
// directory inside the manifest's folder, and says which.
func (c *checker) pathKind(at, p string) (isDir bool, err error) {
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return false, c.fail(at, ErrPathEscape, "want a relative path that stays inside the manifest's folder")
	}
	fi, err := c.root.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// A dangling link and a missing file look alike from inside the
			// root; from outside, a link that resolves is an escape.
			if _, outErr := os.Stat(filepath.Join(c.s.Source.Dir, p)); outErr == nil {
				return false, c.fail(at, ErrPathEscape, "goes through a symbolic link that leads out")
			}
			return false, c.fail(at, ErrMissingFile, "does not exist")
		}
		if _, lerr := os.Lstat(filepath.Join(c.s.Source.Dir, p)); lerr == nil {
			return false, c.fail(at, ErrPathEscape, "goes through a symbolic link that leads out")
		}
		return false, c.fail(at, ErrMissingFile, "cannot be read")
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return false, c.fail(at, ErrMissingFile, "neither a regular file nor a directory")
	}
	return fi.IsDir(), nil
}
