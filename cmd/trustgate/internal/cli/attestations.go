package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/internal/safetext"
)

// NewAttestationsCmd builds "trustgate attestations".
func NewAttestationsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "attestations IMAGE [--output text|json]",
		Short: "List the attestations and signatures stored beside an image (unverified)",
		Long: `List the Sigstore bundles and cosign signatures stored beside an image in its
registry: OCI 1.1 referrers first, then layers of the cosign tags
sha256-<hex>.att (attestations) and sha256-<hex>.sig (cosign sign's plain
signatures). For each, where it was found, its predicate type (or "cosign
signature", for a signature, which attests nothing), who it says signed it,
and its digest.

Nothing is verified here: the signer column is a claim. Use trustgate verify
to check the attestations.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), registryTimeout)
			defer cancel()
			img, _, err := attest.ImageSubject(ctx, args[0], attest.Registry{})
			if err != nil {
				return err
			}
			as, err := attest.Attachments(ctx, img, attest.Registry{})
			if err != nil {
				return err
			}
			attest.SortAttachments(as)
			out := cmd.OutOrStdout()
			if output == "json" {
				type entry struct {
					Source        string `json:"source"`
					Kind          string `json:"kind"`
					Format        string `json:"format"`
					PredicateType string `json:"predicateType"`
					Signer        string `json:"signer"`
					Digest        string `json:"digest"`
				}
				list := []entry{}
				for _, a := range as {
					list = append(list, entry{a.Source, a.Kind, a.Format, a.PredicateType, a.Signer, a.Digest})
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"image": img.String(), "verified": false, "attestations": list})
			}
			fmt.Fprintf(out, "%s: %s, not verified\n", img, countKinds(as))
			if len(as) == 0 {
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tFORMAT\tTYPE\tSIGNER\tDIGEST")
			for _, a := range as {
				// Everything here comes from the registry: anyone who can
				// push may try to forge rows or hide them with control
				// characters, so anything unprintable is shown quoted.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safetext.Quote(a.Source), a.Format, safetext.Quote(listedType(a)), safetext.Quote(a.Signer), safetext.Quote(a.Digest))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// countKinds says how many attestations (and signatures, if any) a listing
// holds.
func countKinds(as []attest.Attachment) string {
	sigs := 0
	for _, a := range as {
		if a.Kind == attest.KindSignature {
			sigs++
		}
	}
	if sigs == 0 {
		return fmt.Sprintf("%d attestation(s)", len(as))
	}
	return fmt.Sprintf("%d attestation(s) and %d signature(s)", len(as)-sigs, sigs)
}

// listedType is the TYPE column: the predicate type of an attestation, or
// "cosign signature" for a signature.
func listedType(a attest.Attachment) string {
	if a.Kind == attest.KindSignature {
		return "cosign signature"
	}
	return a.PredicateType
}
