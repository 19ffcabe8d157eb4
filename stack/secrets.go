package stack

import "regexp"

// secretPatterns recognise credentials written where only a reference
// belongs. A match is reported by its label, never by its text.
var secretPatterns = []struct {
	label string
	re    *regexp.Regexp
}{
	{"an OpenAI or Anthropic style API key", regexp.MustCompile(`\bsk-[A-Za-z0-9_-]{16,}`)},
	{"an AWS access key ID", regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"a GitHub token", regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})`)},
	{"a Google API key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
	{"a Hugging Face token", regexp.MustCompile(`\bhf_[A-Za-z0-9]{30,}`)},
	{"a Slack token", regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`)},
	{"a JSON Web Token", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)},
	{"a bearer token", regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}`)},
	{"a private key", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
	{"credentials in a URL", regexp.MustCompile(`://[^/@\s:]+:[^/@\s]+@`)},
}

// looksLikeSecret returns a label for what s seems to hold, or "".
func looksLikeSecret(s string) string {
	for _, p := range secretPatterns {
		if p.re.MatchString(s) {
			return p.label
		}
	}
	return ""
}
