// Command guardrail is the example deployment's guardrail plugin for
// trustgate-gateway, on plugin/sdk: OnRequest blocks a chat request when the
// content of one of its messages matches a deny rule; OnResponse allows.
//
// Rules are regular expressions (Go syntax), given with --deny (repeatable)
// and, optionally, as the deny list of a YAML file given with --rules; they
// are numbered from 1, --deny first. The YAML file is why the plugin links
// gopkg.in/yaml.v3, which gives its SBOM a third-party Go module to find.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/plugin/pluginpb"
	"github.com/trustgate/trustgate/plugin/sdk"
)

type guardrail struct {
	deny []*regexp.Regexp
}

// chatRequest is the part of an OpenAI-style chat request the rules see.
// Content is a string or a list of parts, of which text parts count.
type chatRequest struct {
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

func (g guardrail) OnRequest(_ context.Context, r *pluginpb.Request) (*pluginpb.Verdict, error) {
	var req chatRequest
	if err := json.Unmarshal(r.GetBody(), &req); err != nil {
		return sdk.Block("request body is not JSON"), nil
	}
	for _, m := range req.Messages {
		for _, text := range texts(m.Content) {
			for i, re := range g.deny {
				if re.MatchString(text) {
					return sdk.Block(fmt.Sprintf("matched deny rule %d", i+1)), nil
				}
			}
		}
	}
	return sdk.Allow(), nil
}

func (guardrail) OnResponse(context.Context, *pluginpb.Response) (*pluginpb.Verdict, error) {
	return sdk.Allow(), nil
}

// texts returns a message content's text: the string, or its parts' texts.
func texts(content json.RawMessage) []string {
	var s string
	if json.Unmarshal(content, &s) == nil {
		return []string{s}
	}
	var parts []struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(content, &parts)
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		out = append(out, p.Text)
	}
	return out
}

func main() {
	var g guardrail
	flag.Func("deny", "block requests whose message content matches `REGEX` (repeatable)", func(s string) error {
		re, err := regexp.Compile(s)
		g.deny = append(g.deny, re)
		return err
	})
	rules := flag.String("rules", "", "YAML `file` with more deny rules: {deny: [REGEX, ...]}")
	flag.Parse()
	if *rules != "" {
		if err := g.load(*rules); err != nil {
			fmt.Fprintln(os.Stderr, "guardrail:", err)
			os.Exit(2)
		}
	}
	sdk.Serve(g)
}

func (g *guardrail) load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var file struct {
		Deny []string `yaml:"deny"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return fmt.Errorf("reading rules %q: %w", path, err)
	}
	for _, s := range file.Deny {
		re, err := regexp.Compile(s)
		if err != nil {
			return fmt.Errorf("rule in %q: %w", path, err)
		}
		g.deny = append(g.deny, re)
	}
	return nil
}
