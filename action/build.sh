#!/usr/bin/env bash
# Builds trustgate for the action from the action's own checkout (the ref
# the workflow pinned in `uses: trustgate/trustgate/action@REF`), or from
# $VERSION of it, into $BIN, unless a build of that source is there already.
set -euo pipefail
src=$(cd "$ACTION_PATH/.." && pwd)
mkdir -p "$BIN"
if [ -n "${VERSION:-}" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  git -C "$src" worktree add --detach "$work/src" "$VERSION" >/dev/null
  src="$work/src"
fi
# The build is reused only for the same sources and the same Go.
stamp="$(cd "$src" && find . -path ./.git -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.json' -o -name '*.yaml' \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64) $(go version)"
if [ -x "$BIN/trustgate" ] && [ "$(cat "$BIN/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "trustgate: using the cached build of $stamp"
  exit 0
fi
(cd "$src" && go build -o "$BIN/trustgate" ./cmd/trustgate)
printf '%s' "$stamp" > "$BIN/stamp"
"$BIN/trustgate" version
