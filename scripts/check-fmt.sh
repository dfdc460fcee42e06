#!/usr/bin/env bash
# Fails when a Go file's formatting or import grouping differs from
# goimports' (standard library, then other modules, then hostd's own
# packages). goimports is built once from its module into the user cache,
# outside the checkout, and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
VERSION=v0.53.0 # golang.org/x/tools
dir=${XDG_CACHE_HOME:-$HOME/.cache}/hostd-test/goimports-$VERSION
bin=$dir/goimports
if [[ ! -x $bin ]]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && GOBIN=$tmp GOFLAGS=-mod=mod $GO install "golang.org/x/tools/cmd/goimports@$VERSION")
	mkdir -p "$dir"
	mv "$tmp/goimports" "$bin"
fi
mapfile -t files < <(git ls-files '*.go')
bad=$("$bin" -local github.com/hostd/hostd -l "${files[@]}")
if [[ -n $bad ]]; then
	echo "files not formatted as goimports -local github.com/hostd/hostd would (make fmt fixes them):"
	echo "$bad" | sed 's/^/  /'
	"$bin" -local github.com/hostd/hostd -d $bad | head -60
	exit 1
fi
echo "check-fmt: ${#files[@]} files formatted and grouped"
