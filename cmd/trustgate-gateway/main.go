// Command trustgate-gateway is the self-verifying LLM gateway: it verifies
// its own executable, its signed policy, its configuration and every plugin
// and agent, starts each from the bytes it verified with only what the
// policy grants, and only then listens. See package gateway.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trustgate/trustgate/cmd/trustgate-gateway/internal/app"
)

// Set at build time (go build -ldflags "-X main.embeddedTrustKey=..."): a
// base64-encoded PEM public key that may sign policies, used when no
// --trust-key is given, and the lowest policy version the binary accepts.
var (
	embeddedTrustKey         string
	embeddedMinPolicyVersion string
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, app.Embedded{TrustKey: embeddedTrustKey, MinPolicyVersion: embeddedMinPolicyVersion})
	stop()
	os.Exit(code)
}
