package oms

import (
	"slices"
	"strings"
	"testing"
)

// TestComparePaths: paths compare as Python compares PurePosixPath, as
// lists of their components.
func TestComparePaths(t *testing.T) {
	paths := []string{"a", "a/b", "a.txt", "a-b", "a/b/c", "ab", "B", "é", ".", "a/a", "d0/f00", "d0/d1/f0", ""}
	for _, a := range paths {
		for _, b := range paths {
			want := slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
			if got := comparePaths(a, b); got != want {
				t.Errorf("comparePaths(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}
