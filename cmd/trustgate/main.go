// Command trustgate inventories, signs and verifies AI gateway deployments.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trustgate/trustgate/cmd/trustgate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
