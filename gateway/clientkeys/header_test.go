package clientkeys

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestFromHeader(t *testing.T) {
	const k = "tgk_abcdefghijkl_secret"
	cases := []struct {
		name    string
		headers map[string][]string
		want    string
		ok      bool
	}{
		{"bearer", map[string][]string{"Authorization": {"Bearer " + k}}, k, true},
		{"bearer in lower case", map[string][]string{"Authorization": {"bearer " + k}}, k, true},
		{"bearer with spaces around", map[string][]string{"Authorization": {"Bearer   " + k + " "}}, k, true},
		{"x-api-key", map[string][]string{"X-Api-Key": {k}}, k, true},
		{"both, the same", map[string][]string{"Authorization": {"Bearer " + k}, "X-Api-Key": {k}}, k, true},
		{"both, different", map[string][]string{"Authorization": {"Bearer " + k}, "X-Api-Key": {k + "x"}}, "", false},
		{"none", map[string][]string{"Accept": {"*/*"}}, "", false},
		{"basic", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", false},
		{"basic and x-api-key", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}, "X-Api-Key": {k}}, "", false},
		{"bearer without token", map[string][]string{"Authorization": {"Bearer "}}, "", false},
		{"bearer alone", map[string][]string{"Authorization": {"Bearer"}}, "", false},
		{"token without scheme", map[string][]string{"Authorization": {k}}, "", false},
		{"two tokens", map[string][]string{"Authorization": {"Bearer " + k + " " + k}}, "", false},
		{"repeated authorization", map[string][]string{"Authorization": {"Bearer " + k, "Bearer " + k}}, "", false},
		{"repeated x-api-key", map[string][]string{"X-Api-Key": {k, k}}, "", false},
		{"empty x-api-key", map[string][]string{"X-Api-Key": {""}}, "", false},
		{"control character", map[string][]string{"X-Api-Key": {k + "\x01"}}, "", false},
		{"non-ASCII", map[string][]string{"Authorization": {"Bearer " + k + "é"}}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for name, values := range c.headers {
				for _, v := range values {
					h.Add(name, v)
				}
			}
			got, ok := FromHeader(h)
			if got != c.want || ok != c.ok {
				t.Errorf("FromHeader = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// A request as a client sends it: the header names arrive in any case.
func TestFromHeaderOnARequest(t *testing.T) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("POST /v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: tgk_k\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := FromHeader(r.Header); !ok || got != "tgk_k" {
		t.Errorf("FromHeader = %q, %v", got, ok)
	}
}
