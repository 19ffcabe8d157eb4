# make test: the README's test command, and what CI runs. It builds the peer
# programs the interop and keyless tests run (cosign, Fulcio, Rekor v2, the
# timestamp authority, from the Go module proxy at pinned versions, cached in
# ~/.cache/trustgate/tools) and sigstore-js (npm), then runs every test.
# A plain `go test ./...` also works: tests whose peers are not built skip,
# naming the command that builds them.

GO ?= go
TIMEOUT ?= 40m

.PHONY: test peers lint

test: peers
	$(GO) test -timeout $(TIMEOUT) ./...

peers:
	$(GO) run ./internal/testtools/cmd/build-testtools
	bash .ci/install-sigstore-js

# golangci-lint, pinned, built once from the Go module proxy into the cache.
GOLANGCI_LINT_VERSION := v2.15.0
LINT := $(HOME)/.cache/trustgate/lint/$(GOLANGCI_LINT_VERSION)/golangci-lint

lint: $(LINT)
	$(LINT) run ./...

$(LINT):
	cd "$$(mktemp -d)" && GOWORK=off GOFLAGS=-mod=mod GOBIN="$(dir $(LINT))" $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
