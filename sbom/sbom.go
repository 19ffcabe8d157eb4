package sbom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/syft/syft"

	"github.com/trustgate/trustgate/digest"
	"github.com/trustgate/trustgate/localmodel"
	"github.com/trustgate/trustgate/pin"
	"github.com/trustgate/trustgate/sbomprop"
	"github.com/trustgate/trustgate/stack"
)

// Kinds of error Generate returns; match with errors.Is.
var (
	// ErrScan means syft could not catalog a component.
	ErrScan = errors.New("scanning component")
	// ErrImage means an image could not be read or pinned to one digest.
	ErrImage = pin.ErrImage
)

// Options tune Generate. The zero value is ready to use.
type Options struct {
	// Timestamp, when not zero, is written as the BOM's metadata.timestamp.
	// Leave it zero for byte-identical output across runs.
	Timestamp time.Time
	// Progress, when not nil, is called as each component is scanned.
	Progress func(Event)
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
	// Registry is how image references are resolved (credentials,
	// transport, timeout). Loopback registries are reached over plain
	// HTTP, as go-containerregistry does by default.
	Registry pin.Registry
}

// Event reports progress on one component.
type Event struct {
	Kind, Name string // as in sbomprop.Kind and the manifest
	Done       bool   // false when a scan starts, true when it ends
	Packages   int    // packages found, when Done
	Elapsed    time.Duration
}

// Generate inventories the deployment s. It reads every file the manifest
// names and catalogs each component with syft; it resolves image
// references to digests (the only network access, and only for images given
// as registry references).
func Generate(ctx context.Context, s *stack.Stack, opts Options) (*cdx.BOM, error) {
	g := &generator{s: s, opts: opts, log: opts.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	root, err := os.OpenRoot(s.Source.Dir)
	if err != nil {
		return nil, fmt.Errorf("opening the manifest's folder: %w", err)
	}
	defer root.Close()
	g.root = root
	// syft builds a license scanner for every scan unless the context holds
	// one; building it is most of a small scan's time, so build it once.
	ctx, err = syft.SetContextLicenseScanner(ctx, syft.DefaultCreateSBOMConfig().Licenses)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScan, err)
	}
	return g.generate(ctx)
}

type generator struct {
	s    *stack.Stack
	opts Options
	log  *slog.Logger
	root *os.Root

	components []cdx.Component
	deps       map[string][]string // bom-ref -> refs it depends on
	images     map[string]resolvedImage
}

func (g *generator) generate(ctx context.Context) (*cdx.BOM, error) {
	g.deps = map[string][]string{}
	g.images = map[string]resolvedImage{}
	deployment := g.deploymentComponent()

	for _, im := range g.s.Images {
		c, err := g.imageComponent(ctx, im)
		if err != nil {
			return nil, err
		}
		g.components = append(g.components, c)
		g.dependOn(deployment.BOMRef, c.BOMRef)
	}
	gateway := ref(stack.KindGateway, g.s.Gateway.Name)
	for _, comp := range g.s.Components() {
		c, err := g.runnableComponent(ctx, comp)
		if err != nil {
			return nil, err
		}
		g.components = append(g.components, c)
		if comp.Kind == stack.KindGateway {
			g.dependOn(deployment.BOMRef, c.BOMRef)
		} else {
			g.dependOn(gateway, c.BOMRef)
		}
	}
	services := g.services(gateway)
	for _, m := range g.s.Models {
		c, err := g.modelComponent(ctx, m)
		if err != nil {
			return nil, err
		}
		g.components = append(g.components, c)
		g.dependOn(deployment.BOMRef, c.BOMRef)
		if m.Provider != "" {
			g.dependOn(c.BOMRef, ref("service", m.Provider))
		}
	}

	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.Metadata = &cdx.Metadata{
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool("trustgate", trustgateVersion()), tool("syft", syftVersion())}},
		Component: &deployment,
	}
	if !g.opts.Timestamp.IsZero() {
		bom.Metadata.Timestamp = g.opts.Timestamp.UTC().Format(time.RFC3339)
	}
	bom.Components = &g.components
	if len(services) > 0 {
		bom.Services = &services
	}
	bom.Dependencies = g.dependencies()
	return bom, nil
}

func (g *generator) deploymentComponent() cdx.Component {
	md := g.s.Metadata
	return cdx.Component{
		BOMRef:      ref("deployment", md.Name),
		Type:        cdx.ComponentTypeApplication,
		Name:        md.Name,
		Version:     md.Version,
		Description: md.Description,
		Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: g.s.Source.Digest.Hex()}},
		Properties: props(
			sbomprop.Kind, "deployment",
			sbomprop.Path, filepath.Base(g.s.Source.File),
			sbomprop.Digest, g.s.Source.Digest.String(),
		),
	}
}

// runnableComponent inventories the gateway, a plugin or an agent.
func (g *generator) runnableComponent(ctx context.Context, comp stack.Component) (cdx.Component, error) {
	bomRef := ref(comp.Kind, comp.Name)
	argv := sbomprop.CommandValue(comp.Argv())
	c := cdx.Component{
		BOMRef:  bomRef,
		Type:    cdx.ComponentTypeApplication,
		Name:    comp.Name,
		Version: comp.Version,
	}
	if comp.Image != "" {
		im := g.images[comp.Image]
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: im.Digest.Hex()}}
		c.Properties = props(sbomprop.Kind, comp.Kind, sbomprop.Role, comp.Role, sbomprop.Image, comp.Image,
			sbomprop.Digest, im.Digest.String(), sbomprop.Command, argv)
		g.dependOn(bomRef, ref("image", comp.Image))
		return c, nil
	}

	fi, err := g.root.Stat(comp.Path)
	if err != nil {
		return cdx.Component{}, fmt.Errorf("%s %q: %w", comp.Kind, comp.Name, err)
	}
	var d digest.Digest
	provider := "file"
	if fi.IsDir() {
		provider = "dir"
		if d, err = digest.Tree(g.root, comp.Path); err != nil {
			return cdx.Component{}, fmt.Errorf("%s %q: %w", comp.Kind, comp.Name, err)
		}
	} else {
		fd, err := digest.File(g.root, comp.Path)
		if err != nil {
			return cdx.Component{}, fmt.Errorf("%s %q: %w", comp.Kind, comp.Name, err)
		}
		d = fd.SHA256
		c.Hashes = fileHashes(fd)
	}
	c.Properties = props(sbomprop.Kind, comp.Kind, sbomprop.Role, comp.Role, sbomprop.Path, comp.Path,
		sbomprop.Digest, d.String(), sbomprop.Command, argv)

	abs := filepath.Join(g.s.Source.Dir, filepath.FromSlash(comp.Path))
	if err := g.scanInto(ctx, &c, comp.Kind, syftSource{provider, abs}); err != nil {
		return cdx.Component{}, err
	}
	return c, nil
}

// modelComponent inventories a model: the providers that serve it, and
// its file or folder measured as package localmodel measures it (the
// verifier measures it the same way), with the file's hashes when it is
// one file without a signature.
func (g *generator) modelComponent(ctx context.Context, m stack.Model) (cdx.Component, error) {
	c := cdx.Component{
		BOMRef:  ref("model", m.Name),
		Type:    cdx.ComponentTypeMachineLearningModel,
		Name:    m.Name,
		Version: m.Version,
	}
	kv := []string{sbomprop.Kind, "model", sbomprop.Provider, m.Provider}
	if len(m.Fallbacks) > 0 {
		kv = append(kv, sbomprop.Fallbacks, sbomprop.ListValue(m.Fallbacks))
	}
	if m.File != "" {
		d, err := g.modelDigest(ctx, m, &c)
		if err != nil {
			return cdx.Component{}, fmt.Errorf("model %q: %w", m.Name, err)
		}
		kv = append(kv, sbomprop.Path, m.File, sbomprop.Digest, d.String(), sbomprop.Signature, m.Signature)
	}
	c.Properties = props(kv...)
	if card := m.Card; card != nil {
		c.Description = card.Description
		if card.License != "" {
			c.Licenses = &cdx.Licenses{licenseChoice(card.License)}
		}
		mc := &cdx.MLModelCard{}
		if card.Task != "" || card.ArchitectureFamily != "" || card.ModelArchitecture != "" {
			mc.ModelParameters = &cdx.MLModelParameters{
				Task:               card.Task,
				ArchitectureFamily: card.ArchitectureFamily,
				ModelArchitecture:  card.ModelArchitecture,
			}
		}
		if len(card.UseCases) > 0 || len(card.Limitations) > 0 {
			mc.Considerations = &cdx.MLModelCardConsiderations{
				UseCases:             nonEmpty(card.UseCases),
				TechnicalLimitations: nonEmpty(card.Limitations),
			}
		}
		c.ModelCard = mc
	}
	return c, nil
}

// modelDigest measures a model's file or folder as localmodel.Measure
// does, and gives c the file's hashes when it is one file without a
// signature (read once: its SHA-256 is that digest).
func (g *generator) modelDigest(ctx context.Context, m stack.Model, c *cdx.Component) (digest.Digest, error) {
	fi, err := g.root.Stat(m.File)
	if err != nil {
		return digest.Digest{}, err
	}
	if fi.IsDir() || m.Signature != "" {
		lm, err := localmodel.Measure(ctx, g.s.Source.Dir, m)
		if err != nil {
			return digest.Digest{}, err
		}
		return lm.Digest, nil
	}
	fd, err := digest.File(g.root, m.File)
	if err != nil {
		return digest.Digest{}, err
	}
	c.Hashes = fileHashes(fd)
	return fd.SHA256, nil
}

// services describes each provider; the gateway depends on all of them.
func (g *generator) services(gateway string) []cdx.Service {
	var out []cdx.Service
	yes := true
	for _, p := range g.s.Providers {
		s := cdx.Service{
			BOMRef:               ref("service", p.Name),
			Name:                 p.Name,
			Endpoints:            &[]string{p.BaseURL},
			Authenticated:        &yes,
			CrossesTrustBoundary: &yes,
			// The reference only: where the credential is kept, never its value.
			Properties: props(sbomprop.Credential, p.Credential.String()),
		}
		out = append(out, s)
		g.dependOn(gateway, s.BOMRef)
	}
	return out
}

func (g *generator) dependOn(from string, to ...string) {
	g.deps[from] = append(g.deps[from], to...)
}

// dependencies lists the graph sorted by ref, with each list sorted and
// free of repeats, so that output does not depend on map order.
func (g *generator) dependencies() *[]cdx.Dependency {
	refs := make([]string, 0, len(g.deps))
	for r := range g.deps {
		refs = append(refs, r)
	}
	slices.Sort(refs)
	out := make([]cdx.Dependency, 0, len(refs))
	for _, r := range refs {
		on := slices.Compact(slices.Sorted(slices.Values(g.deps[r])))
		out = append(out, cdx.Dependency{Ref: r, Dependencies: &on})
	}
	return &out
}

// ref is the bom-ref of a top-level entry: "trustgate:<kind>/<name>".
func ref(kind, name string) string { return "trustgate:" + kind + "/" + name }

func fileHashes(fd digest.FileDigests) *[]cdx.Hash {
	return &[]cdx.Hash{
		{Algorithm: cdx.HashAlgoSHA256, Value: fd.SHA256.Hex()},
		{Algorithm: cdx.HashAlgoSHA512, Value: fd.SHA512.Hex()},
	}
}

// props builds a property list from name, value pairs, skipping empty values.
func props(kv ...string) *[]cdx.Property {
	var out []cdx.Property
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out = append(out, cdx.Property{Name: kv[i], Value: kv[i+1]})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &out
}

func nonEmpty(s []string) *[]string {
	if len(s) == 0 {
		return nil
	}
	return &s
}

// licenseChoice writes an SPDX expression as one, and anything else by name.
func licenseChoice(l string) cdx.LicenseChoice {
	if strings.ContainsAny(l, " ()") {
		return cdx.LicenseChoice{Expression: l}
	}
	return cdx.LicenseChoice{License: &cdx.License{Name: l}}
}

func tool(name, version string) cdx.Component {
	return cdx.Component{Type: cdx.ComponentTypeApplication, Name: name, Version: version}
}

func trustgateVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func syftVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/anchore/syft" {
				return d.Version
			}
		}
	}
	return "unknown"
}
