// Package safetext makes text that trustgate did not write (a registry's
// error, a name in a file, an identity in a certificate) safe to print: one
// set of rules for every message, report and terminal line.
package safetext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clip returns s with every character that does not print (control
// characters, invalid UTF-8, bidirectional overrides and other format
// characters) shown as '?', cut to at most n bytes at a character
// boundary, with "..." when it was cut.
func Clip(s string, n int) string {
	s = clean(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Line is the first line of s, with every character that does not print
// shown as '?': what a one-line message may show of text from outside.
func Line(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return clean(s)
}

// Quote returns s as it is when every character in it prints (spaces
// included), and Go-quoted (ASCII) otherwise, so that nothing in it can
// rewrite a terminal and the reader sees exactly what was there.
func Quote(s string) string {
	for _, r := range s {
		if !printable(r) {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

func clean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		if r == utf8.RuneError && size == 1 || !printable(r) {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func printable(r rune) bool {
	return r == ' ' || (unicode.IsPrint(r) && !unicode.Is(unicode.Cf, r))
}
