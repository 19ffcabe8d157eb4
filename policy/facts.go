package policy

import (
	"encoding/json"
	"fmt"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/trustgate/trustgate/sbomprop"
)

// FactsFromSBOM reads what a trustgate SBOM says about a deployment: each
// component with the digest recorded for it and the packages found inside
// it (a model also with the provider and fallbacks that serve it), what the
// SBOM lists outside its components (TopLevel), and where each provider's
// credential is sent. It is what `policy
// test` evaluates. It does not check the digests against the artifacts or
// verify any signature: that is verify's job, which adds signers and
// attestations to the facts. The manifest (the SBOM's metadata component)
// is in the facts with the digest the SBOM records for it.
func FactsFromSBOM(bom *cdx.BOM, now time.Time) (Facts, error) {
	f := Facts{Now: now}
	if bom == nil {
		return f, fmt.Errorf("no SBOM")
	}
	if md := bom.Metadata; md != nil && md.Component != nil && sbomprop.Get(md.Component.Properties, sbomprop.Kind) == "deployment" {
		f.Manifest = &ManifestFacts{Name: md.Component.Name, Digest: sbomprop.Get(md.Component.Properties, sbomprop.Digest)}
	}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			kind := sbomprop.Get(c.Properties, sbomprop.Kind)
			if kind == "" {
				continue // not one of trustgate's top-level components
			}
			cf := ComponentFacts{
				Kind: kind, Name: c.Name, SBOM: true,
				Role:   sbomprop.Get(c.Properties, sbomprop.Role),
				Digest: sbomprop.Get(c.Properties, sbomprop.Digest),
			}
			if kind == "model" {
				// A model served by a provider has no digest: it is bound
				// to where it is served from.
				cf.Provider = sbomprop.Get(c.Properties, sbomprop.Provider)
				fallbacks, ok := sbomprop.List(c.Properties, sbomprop.Fallbacks)
				if !ok {
					return f, fmt.Errorf("model %q: %s is not a JSON list of names", c.Name, sbomprop.Fallbacks)
				}
				cf.Fallbacks = fallbacks
			}
			cf.Packages, cf.Unidentified, cf.Systems = PackagesOf(c)
			f.Components = append(f.Components, cf)
		}
	}
	if top := TopLevelPackages(bom); !top.Empty() {
		f.TopLevel = &top
	}
	if bom.Services != nil {
		for _, s := range *bom.Services {
			pf := ProviderFacts{Name: s.Name, Credential: sbomprop.Get(s.Properties, sbomprop.Credential)}
			if s.Endpoints != nil && len(*s.Endpoints) > 0 {
				pf.BaseURL = (*s.Endpoints)[0]
			}
			f.Providers = append(f.Providers, pf)
		}
	}
	raw, err := json.Marshal(bom)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(raw, &f.SBOM); err != nil {
		return f, err
	}
	return f, nil
}
