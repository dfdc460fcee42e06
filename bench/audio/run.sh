#!/usr/bin/env bash
# Benchmarks hostd's audio control against pactl, the tool it replaces, on
# one private PipeWire stack in one run (started by the Go test harness,
# internal/testenv/pipewire.go):
#   - reading the full state: `hostd audio status --json` (the CLI, process
#     start included) and its API call alone (GET /v1/audio/status on the
#     unix socket) against `pactl list`,
#   - setting a sink's volume: `hostd audio volume` and POST
#     /v1/audio/volume against `pactl set-sink-volume`.
# Prints each side's time per operation and the ratios.
# Usage: bench/audio/run.sh [ITERATIONS]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-300}
T=$(mktemp -d /tmp/hostd-audiobench.XXXXXX)
trap 'rm -rf "$T"' EXIT
OUT=$T/bench.txt

go build -o "$T/hostd" ./cmd/hostd
HOSTD_BIN=$T/hostd go test ./pkg/audio/ -run '^$' -bench 'BenchmarkStatus|BenchmarkSetVolume' -benchtime "${N}x" -count 1 | tee "$OUT"

awk '
/^Benchmark(Status|SetVolume)\/impl=/ {
	split($1, a, "/"); op = a[1]; sub(/^Benchmark/, "", op)
	impl = a[2]; sub(/^impl=/, "", impl); sub(/-[0-9]+$/, "", impl)
	ns[op, impl] = $3; ops[op] = 1
}
END {
	printf "\n%-10s %12s %12s %12s %12s %12s\n", "operation", "cli ms/op", "api ms/op", "pactl ms/op", "pactl/cli", "pactl/api"
	for (op in ops) {
		c = ns[op, "hostd-cli"]; h = ns[op, "hostd"]; p = ns[op, "pactl"]
		if (c == "" || h == "" || p == "") { printf "%-10s missing result\n", op; bad = 1; continue }
		printf "%-10s %12.3f %12.3f %12.3f %11.2fx %11.1fx\n", op, c / 1e6, h / 1e6, p / 1e6, p / c, p / h
	}
	exit bad
}' "$OUT"
