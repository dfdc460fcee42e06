#!/usr/bin/env bash
# Runs every native Go fuzz target of hostd for FUZZTIME each (default
# 60s; `make fuzz`). CI runs it with a few seconds per target
# (`make fuzz-short`), which also replays each target's committed corpus
# (testdata/fuzz/FuzzX) under the fuzzing engine. A crash makes go test
# write the failing input to testdata/fuzz/FuzzX/ and this script exit 1.
#
# FUZZ_PKGS limits the packages (default ./...); FUZZ_MATCH the targets
# (a grep -E pattern on the target names).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
FUZZ_PKGS=${FUZZ_PKGS:-./...}
FUZZ_MATCH=${FUZZ_MATCH:-.}

failed=()
count=0
for pkg in $($GO list $FUZZ_PKGS); do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	# Fuzz targets live in _test.go files; list them without building.
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*(' "$dir"/*_test.go 2>/dev/null | sed -e 's/^func //' -e 's/($//' | grep -E "$FUZZ_MATCH" | sort -u || true)
	for t in $targets; do
		count=$((count + 1))
		echo "== $pkg $t ($FUZZTIME)"
		if ! $GO test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg"; then
			failed+=("$pkg $t")
		fi
	done
done
if ((${#failed[@]} > 0)); then
	echo "fuzz: ${#failed[@]} of $count targets failed:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: $count targets ran for $FUZZTIME each, no failures"
