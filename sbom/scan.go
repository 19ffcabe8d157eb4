package sbom

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/anchore/stereoscope"
	"github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/format/common/cyclonedxhelpers"

	// syft's RPM cataloger needs a database/sql driver for newer RPM
	// databases; this is the pure-Go one syft's own CLI links.
	_ "modernc.org/sqlite"
)

// scanInto catalogs src
// with syft and nests what it finds under c, with bom-refs made unique to c.
func (g *generator) scanInto(ctx context.Context, c *cdx.Component, kind string, src syftSource) error {
	start := time.Now()
	g.progress(Event{Kind: kind, Name: c.Name})
	components, deps, err := g.scan(ctx, c.BOMRef, src)
	if err != nil {
		return fmt.Errorf("%w: %s %q: %w", ErrScan, kind, c.Name, err)
	}
	if len(components) > 0 {
		c.Components = &components
	}
	for _, pc := range components {
		g.dependOn(c.BOMRef, pc.BOMRef)
	}
	for from, to := range deps {
		g.dependOn(from, to...)
	}
	g.progress(Event{Kind: kind, Name: c.Name, Done: true, Packages: len(components), Elapsed: time.Since(start)})
	return nil
}

// syftSource is what syft reads: a provider name ("file", "dir", "oci-dir",
// "docker-archive", "registry") and its input (a path or a reference).
type syftSource struct{ provider, input string }

// scan runs syft on input and returns the package (and operating-system)
// components it found, with bom-refs prefixed by the parent's, and the
// dependencies between them.
func (g *generator) scan(ctx context.Context, parent string, in syftSource) ([]cdx.Component, map[string][]string, error) {
	srcCfg := syft.DefaultGetSourceConfig().WithSources(in.provider)
	if in.provider == "registry" {
		srcCfg = srcCfg.WithRegistryOptions(&image.RegistryOptions{InsecureUseHTTP: loopbackRef(in.input)})
	}
	src, err := syft.GetSource(ctx, in.input, srcCfg)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	cfg := syft.DefaultCreateSBOMConfig().WithoutFiles()
	s, err := syft.CreateSBOM(ctx, src, cfg)
	if err != nil {
		return nil, nil, err
	}
	components, deps := nest(parent, cyclonedxhelpers.ToFormatModel(*s))
	return components, deps, nil
}

// nest takes the package and operating-system components of a syft BOM (not
// its file components: the parent carries the digests that matter), renames
// their bom-refs to "<parent>#<ref>" so that the same package found in two
// components stays two entries, and keeps the dependencies among them.
func nest(parent string, bom *cdx.BOM) ([]cdx.Component, map[string][]string) {
	rename := func(r string) string { return parent + "#" + r }
	var out []cdx.Component
	kept := map[string]bool{}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			if c.Type == cdx.ComponentTypeFile {
				continue
			}
			c.BOMRef = rename(c.BOMRef)
			c.Components = nil
			kept[c.BOMRef] = true
			out = append(out, c)
		}
	}
	deps := map[string][]string{}
	if bom.Dependencies != nil {
		for _, d := range *bom.Dependencies {
			from := rename(d.Ref)
			if !kept[from] || d.Dependencies == nil {
				continue
			}
			for _, to := range *d.Dependencies {
				if kept[rename(to)] {
					deps[from] = append(deps[from], rename(to))
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b cdx.Component) int { return strings.Compare(a.BOMRef, b.BOMRef) })
	return out, deps
}

func (g *generator) progress(e Event) {
	if g.opts.Progress != nil {
		g.opts.Progress(e)
	}
	if e.Done {
		g.log.Debug("scanned", "kind", e.Kind, "name", e.Name, "packages", e.Packages, "elapsed", e.Elapsed)
	}
}

// Cleanup removes the temporary folders the image scanner (stereoscope)
// keeps for the life of the process. Call it once, when the process is
// done with SBOMs: it removes every such folder, also those of a scan in
// progress.
//
// stereoscope marks it deprecated in favour of each image's Cleanup, which
// syft's source.Close already calls; that leaves the process-wide root
// folder behind, which only this removes (syft's own CLI calls it at exit
// too).
func Cleanup() { stereoscope.Cleanup() } //nolint:staticcheck // see above
