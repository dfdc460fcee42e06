#!/usr/bin/env bash
# Benchmarks hostd's caching DNS resolver against dnsmasq and unbound, in
# one run, on the same cached query set:
#   - an "authority" dnsmasq on loopback serves N fixed names (TTL 1h);
#   - hostd (netcfg.dns), a caching dnsmasq and unbound each forward to it;
#   - each cache is warmed with one pass over the names, then dnsperf
#     measures saturated throughput (QPS) for SECS seconds, and latency
#     percentiles at a fixed offered load (RATE queries/s) that every
#     server can carry; the servers take turns for ROUNDS rounds and the
#     median round is reported (CPU% is the server's own, median round).
# Everything stays on 127.0.0.0/8.
# Usage: [ROUNDS=3] [CLIENTS=4] [OUTSTANDING=200] [UNBOUND_THREADS=2] \
#        bench/dns/run.sh [SECS] [N] [RATE]
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS=${1:-5}
N=${2:-1000}
RATE=${3:-10000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
for tool in dnsperf dnsmasq unbound dig python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool (scripts/install-test-deps.sh installs it)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/hostd-dnsbench.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -n "${KEEP:-}" ]] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT

echo "building hostd into $T" >&2
go build -o "$T/hostd" ./cmd/hostd

AUTH=127.0.0.61 HOSTD=127.0.0.62 DNSMASQ=127.0.0.63 UNBOUND=127.0.0.64
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AUTH_PORT=$(port) HOSTD_PORT=$(port) DNSMASQ_PORT=$(port) UNBOUND_PORT=$(port)

# The data: N names, the query file asks for each once.
for i in $(seq 0 $((N - 1))); do
	echo "192.0.2.$((i % 250 + 1)) host$i.bench.test"
	echo "host$i.bench.test A" >>"$T/queries.txt"
done >"$T/hosts"

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$T/hosts" \
	--local=/bench.test/ --local-ttl=3600 --cache-size=0 --bind-interfaces \
	--listen-address=$AUTH --port="$AUTH_PORT" --pid-file= --user=root &
PIDS+=($!)

cat >"$T/hostd.yaml" <<EOF
hostd:
  state_dir: $T/state
  socket: $T/hostd.sock
  log_level: warn
  http:
    listen: ""
metrics:
  enable: false
netcfg:
  dns:
    enable: true
    listen: $HOSTD:$HOSTD_PORT
    upstreams: ["$AUTH:$AUTH_PORT"]
    hosts_file: ""
    cache_size: 10000
EOF
"$T/hostd" run -c "$T/hostd.yaml" >"$T/hostd.log" 2>&1 &
PIDS+=($!)
HOSTD_PID=$!

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	--server=$AUTH#"$AUTH_PORT" --cache-size=10000 --bind-interfaces \
	--listen-address=$DNSMASQ --port="$DNSMASQ_PORT" --pid-file= --user=root &
PIDS+=($!)
DNSMASQ_PID=$!

cat >"$T/unbound.conf" <<EOF
server:
  interface: $UNBOUND@$UNBOUND_PORT
  port: $UNBOUND_PORT
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "$T"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  module-config: "iterator"
  num-threads: ${UNBOUND_THREADS:-2}
  msg-cache-size: 16m
  rrset-cache-size: 32m
  domain-insecure: "bench.test"
  local-zone: "test." nodefault
forward-zone:
  name: "bench.test"
  forward-addr: $AUTH@$AUTH_PORT
EOF
unbound -d -c "$T/unbound.conf" >"$T/unbound.log" 2>&1 &
PIDS+=($!)
UNBOUND_PID=$!

wait_dns() { # addr port
	for _ in $(seq 200); do
		if dig @"$1" -p "$2" +time=1 +tries=1 +short host0.bench.test A 2>/dev/null | grep -q '^192\.0\.2\.'; then return 0; fi
		sleep 0.05
	done
	echo "no answer from $1:$2" >&2
	cat "$T"/*.log >&2 || true
	return 1
}
wait_dns $AUTH "$AUTH_PORT"
wait_dns $HOSTD "$HOSTD_PORT"
wait_dns $DNSMASQ "$DNSMASQ_PORT"
wait_dns $UNBOUND "$UNBOUND_PORT"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A ADDR=([hostd]=$HOSTD [dnsmasq]=$DNSMASQ [unbound]=$UNBOUND)
declare -A PORT=([hostd]=$HOSTD_PORT [dnsmasq]=$DNSMASQ_PORT [unbound]=$UNBOUND_PORT)
declare -A PID=([hostd]=$HOSTD_PID [dnsmasq]=$DNSMASQ_PID [unbound]=$UNBOUND_PID)
SERVERS=(hostd dnsmasq unbound)

# Warm every cache: one pass over every name.
for s in "${SERVERS[@]}"; do
	dnsperf -s "${ADDR[$s]}" -p "${PORT[$s]}" -d "$T/queries.txt" -n 1 -q 50 >/dev/null
done

# The machine is shared, so the servers take turns, ROUNDS times, and the
# median round counts: background load hits all three alike.
echo "dnsperf: $N cached names, $ROUNDS rounds of $SECS s per server, $CLIENTS clients, $OUTSTANDING outstanding;" \
	"latency at $RATE q/s; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)" >&2
for r in $(seq "$ROUNDS"); do
	for s in "${SERVERS[@]}"; do
		t0=$(cpu_ticks "${PID[$s]}")
		dnsperf -s "${ADDR[$s]}" -p "${PORT[$s]}" -d "$T/queries.txt" -l "$SECS" -c "$CLIENTS" -q "$OUTSTANDING" >"$T/$s.qps.$r" 2>&1
		t1=$(cpu_ticks "${PID[$s]}")
		awk '/Queries per second/ {printf "%.0f\n", $4}' "$T/$s.qps.$r" >>"$T/$s.qps"
		python3 -c "print(f'{($t1-$t0)/$(getconf CLK_TCK)/$SECS*100:.0f}')" >>"$T/$s.cpu"
		# A few queries still in flight when the time is up count as lost;
		# report only real losses.
		awk -v r="$r" -v s="$s" '/Queries lost/ && $4 != "(0.00%)" {print "  round " r " " s ": " $0}' "$T/$s.qps.$r" >&2
		# Latency at a fixed offered load, every answer logged.
		dnsperf -s "${ADDR[$s]}" -p "${PORT[$s]}" -d "$T/queries.txt" -l "$SECS" -Q "$RATE" -v 2>&1 |
			awk '$1 == ">" && $2 == "NOERROR" {print $NF}' >>"$T/$s.lat"
	done
done

median() { sort -n "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
declare -A QPS CPU P50 P90 P99
for s in "${SERVERS[@]}"; do
	QPS[$s]=$(median "$T/$s.qps")
	CPU[$s]=$(median "$T/$s.cpu")
	read -r P50[$s] P90[$s] P99[$s] < <(sort -g "$T/$s.lat" |
		awk '{v[NR]=$1} END {printf "%.0f %.0f %.0f\n", v[int(NR*0.50)]*1e6, v[int(NR*0.90)]*1e6, v[int(NR*0.99)]*1e6}')
	echo "$s qps per round: $(paste -sd' ' "$T/$s.qps")" >&2
done

printf "\n%-8s %10s %8s %10s %10s %10s %12s %12s\n" server qps cpu% p50_us p90_us p99_us "qps/hostd" "qps/unbound"
for s in "${SERVERS[@]}"; do
	printf "%-8s %10s %8s %10s %10s %10s %12s %12s\n" "$s" "${QPS[$s]}" "${CPU[$s]}" "${P50[$s]}" "${P90[$s]}" "${P99[$s]}" \
		"$(python3 -c "print(f'{${QPS[$s]}/${QPS[hostd]}:.2f}')")" \
		"$(python3 -c "print(f'{${QPS[$s]}/${QPS[unbound]}:.2f}')")"
done
