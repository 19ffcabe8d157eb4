// Command guardrail is the example deployment's guardrail plugin: it reads a
// chat request as JSON on standard input and blocks it when a message matches
// one of the deny rules in its YAML rule file. It links gopkg.in/yaml.v3 so
// that its SBOM has a third-party Go module to find.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"
)

type rules struct {
	Deny []string `yaml:"deny"`
}

type request struct {
	Messages []struct {
		Content string `json:"content"`
	} `json:"messages"`
}

func main() {
	ruleFile := flag.String("rules", "", "YAML file with deny patterns")
	flag.Parse()
	var r rules
	if *ruleFile != "" {
		data, err := os.ReadFile(*ruleFile)
		if err != nil {
			fail(err)
		}
		if err := yaml.Unmarshal(data, &r); err != nil {
			fail(err)
		}
	}
	var req request
	if err := json.NewDecoder(io.LimitReader(os.Stdin, 1<<20)).Decode(&req); err != nil {
		fail(err)
	}
	for _, pat := range r.Deny {
		re, err := regexp.Compile(pat)
		if err != nil {
			fail(err)
		}
		for _, m := range req.Messages {
			if re.MatchString(m.Content) {
				fmt.Println(`{"allow":false}`)
				return
			}
		}
	}
	fmt.Println(`{"allow":true}`)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "guardrail:", err)
	os.Exit(1)
}
