// Command build-testtools builds the peer programs the tests run (see
// internal/testtools) into the tools cache, so that CI pays for the builds
// once, before the tests, and not inside a test's timeout.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/trustgate/trustgate/internal/testtools"
)

func main() {
	for _, tool := range testtools.All {
		p, err := testtools.Build(context.Background(), tool)
		if err != nil {
			fmt.Fprintln(os.Stderr, "build-testtools:", err)
			os.Exit(1)
		}
		fmt.Println(p)
	}
}
