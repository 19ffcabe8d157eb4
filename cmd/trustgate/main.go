// Command trustgate inventories, signs and verifies AI gateway deployments.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
	"github.com/trustgate/trustgate/sbom"
)

// stopGrace is how long a command has, after SIGINT or SIGTERM, to notice
// its cancelled context and clean up before the process exits anyway.
const stopGrace = 3 * time.Second

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	stopOnSignal(cancel)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	sbom.Cleanup() // the image scanner's temporary folders
	os.Exit(code)
}

// stopOnSignal cancels the commands' context on SIGINT or SIGTERM, and
// exits (128 + the signal's number, as a shell reports it) when the
// command has not returned within stopGrace, or at a second signal:
// nothing a command waits on can keep trustgate from stopping.
func stopOnSignal(cancel context.CancelFunc) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		cancel()
		select {
		case <-sigs:
		case <-time.After(stopGrace):
		}
		fmt.Fprintf(os.Stderr, "trustgate: stopped by %v\n", sig)
		code := 1
		if s, ok := sig.(syscall.Signal); ok {
			code = 128 + int(s)
		}
		os.Exit(code)
	}()
}
