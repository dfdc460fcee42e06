#!/usr/bin/env bash
# Fails when a hostd package linked into the binary imports testing or
# net/http/httptest: test fixtures belong in _test.go files or a ...test
# package that only tests import. (Third-party modules are not checked:
# prometheus/tsdb imports testing, which hostd cannot change.)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
bad=$($GO list -deps -f '{{if not .Standard}}{{.ImportPath}}: {{join .Imports " "}}{{end}}' ./cmd/hostd |
	grep '^github.com/hostd/hostd' |
	awk '{for (i = 2; i <= NF; i++) if ($i == "testing" || $i == "net/http/httptest") print $1, $i}')
if [[ -n $bad ]]; then
	echo "test code linked into the hostd binary:"
	echo "$bad" | sed 's/^/  /'
	exit 1
fi
echo "check-no-test-code: no hostd package in the binary imports testing or httptest"
