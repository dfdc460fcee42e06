#!/usr/bin/env bash
# Runs every native Go fuzz target of hostd (`make fuzz`: FUZZTIME each,
# default 60s). CI runs `make fuzz-short`, a fixed number of executions per
# target (FUZZTIME=2000x), which also replays each target's committed corpus
# (testdata/fuzz/FuzzX) under the fuzzing engine. A crash makes go test
# write the failing input to testdata/fuzz/FuzzX/ and this script exit 1.
#
# Go's fuzz coordinator before 1.27 can fail a target with a bare "context
# deadline exceeded" when a duration -fuzztime ends while a worker is busy
# (golang/go#75804): nothing was found and no input was written. A count
# (Nx) has no deadline to race, which is why CI uses one; with a duration,
# such a run is retried once, and any other failure fails at once.
#
# FUZZ_PKGS limits the packages (default ./...); FUZZ_MATCH the targets
# (a grep -E pattern on the target names).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
FUZZ_PKGS=${FUZZ_PKGS:-./...}
FUZZ_MATCH=${FUZZ_MATCH:-.}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# fuzz_one PKG TARGET: 0 when the target passed.
fuzz_one() {
	$GO test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$1" 2>&1 | tee "$log"
	return "${PIPESTATUS[0]}"
}

# deadline_flake: the last run failed only at the -fuzztime boundary: the
# one line under "--- FAIL" is the deadline, and no input was written.
deadline_flake() {
	! grep -qE 'Failing input written|panic:' "$log" &&
		[ "$(grep -A1 -- '^--- FAIL: ' "$log" | sed -n 2p | tr -d '[:space:]')" = contextdeadlineexceeded ]
}

failed=()
count=0
for pkg in $($GO list $FUZZ_PKGS); do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	# Fuzz targets live in _test.go files; list them without building.
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*(' "$dir"/*_test.go 2>/dev/null | sed -e 's/^func //' -e 's/($//' | grep -E "$FUZZ_MATCH" | sort -u || true)
	for t in $targets; do
		count=$((count + 1))
		echo "== $pkg $t ($FUZZTIME)"
		if fuzz_one "$pkg" "$t"; then
			continue
		fi
		if deadline_flake; then
			echo "== $pkg $t: stopped at the -fuzztime deadline with nothing found (golang/go#75804); once more"
			fuzz_one "$pkg" "$t" && continue
		fi
		failed+=("$pkg $t")
	done
done
if ((${#failed[@]} > 0)); then
	echo "fuzz: ${#failed[@]} of $count targets failed:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: $count targets ran for $FUZZTIME each, no failures"
