#!/usr/bin/env bash
# Time from "client started on a link that is down" to a usable IPv4
# address and default route by DHCPv4: hostd (netcfg, links[].dhcp: v4)
# against Debian's dhcpcd (dhcpcd-base), side by side in one run.
#   - each round makes a fresh namespace pair joined by veth (new MAC, so
#     every client does a full DISCOVER/OFFER/REQUEST/ACK) with dnsmasq as
#     the server in the peer namespace (--no-ping: no server-side delay);
#   - the clients take turns, N rounds each; the median is reported;
#   - dhcpcd runs twice: as shipped (ARP probe of the offered address,
#     RFC 5227) and with noarp; hostd probes too, for arp_probe (200 ms).
# Nothing leaves the namespaces. Needs root, ip, dnsmasq, dhcpcd.
# Usage: bench/dhcp/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-20}
for tool in ip dnsmasq dhcpcd python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install iproute2 dnsmasq dhcpcd-base)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/hostd-dhcpbench.XXXXXX)
NS=hostd-dhcpb-$$ PEER=hostd-dhcpb-$$-p
CLIENT_PID="" SERVER_PID=""
stop_pids() {
	# dhcpcd sometimes ignores a SIGTERM that comes early in its start-up:
	# KILL after 5 s.
	for p in $CLIENT_PID $SERVER_PID; do
		kill "$p" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	CLIENT_PID="" SERVER_PID=""
}
cleanup() {
	stop_pids
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$PEER" 2>/dev/null || true
	[[ -n "${KEEP:-}" ]] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT

echo "building hostd into $T" >&2
go build -o "$T/hostd" ./cmd/hostd

setup() {
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$PEER" 2>/dev/null || true
	ip netns add "$NS"
	ip netns add "$PEER"
	ip link add veth0 netns "$NS" type veth peer name veth1 netns "$PEER"
	ip -n "$NS" link set lo up
	ip -n "$PEER" link set lo up
	ip -n "$PEER" addr add 10.98.0.1/24 dev veth1
	ip -n "$PEER" link set veth1 up
	rm -f "$T/dnsmasq.leases"
	ip netns exec "$PEER" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--port=0 --interface=veth1 --bind-interfaces --pid-file= --user=root --no-ping \
		--dhcp-authoritative --dhcp-leasefile="$T/dnsmasq.leases" \
		--dhcp-range=10.98.0.100,10.98.0.200,255.255.255.0,1h --dhcp-option=option:router,10.98.0.1 \
		--log-facility="$T/dnsmasq.log" &
	SERVER_PID=$!
	for _ in $(seq 100); do grep -q "DHCP, IP range" "$T/dnsmasq.log" 2>/dev/null && break; sleep 0.05; done
	: >"$T/dnsmasq.log"
}

# wait_bound: poll until veth0 has an address from the pool and a default
# route (at most 30 s); sets MS to the milliseconds since $1 (ns).
wait_bound() {
	local start=$1
	MS=timeout
	for _ in $(seq 6000); do
		if ip -n "$NS" -4 route show default dev veth0 2>/dev/null | grep -q "via 10.98.0.1" &&
			ip -n "$NS" -4 addr show dev veth0 2>/dev/null | grep -q "inet 10.98.0."; then
			MS=$((($(date +%s%N) - start) / 1000000))
			return 0
		fi
		sleep 0.005
	done
}

cat >"$T/hostd.yaml" <<YAML
hostd:
  state_dir: $T/state
  socket: $T/hostd.sock
  http: {listen: ""}
metrics: {enable: false}
netcfg:
  netns: NSNAME
  links:
    - {name: veth0, dhcp: v4}
YAML
sed -i "s/NSNAME/$NS/" "$T/hostd.yaml"

run_hostd() {
	rm -rf "$T/state"
	local start
	start=$(date +%s%N)
	"$T/hostd" run --config "$T/hostd.yaml" >"$T/hostd.log" 2>&1 &
	CLIENT_PID=$!
	wait_bound "$start"
}
run_dhcpcd() {
	local start
	rm -rf "$T/dhcpcd"
	mkdir -p "$T/dhcpcd"
	printf '%s\n' "$@" >"$T/dhcpcd.conf"
	start=$(date +%s%N)
	ip netns exec "$NS" dhcpcd -f "$T/dhcpcd.conf" -4 -B -L -q --nohook resolv.conf --nohook hostname \
		--nohook timezone --nohook ntp.conf veth0 >"$T/dhcpcd.log" 2>&1 &
	CLIENT_PID=$!
	wait_bound "$start"
}

declare -A RES
for i in $(seq "$N"); do
	for who in hostd dhcpcd dhcpcd-noarp; do
		setup
		case $who in
		hostd) run_hostd ;;
		dhcpcd) run_dhcpcd "option routers" ;;
		dhcpcd-noarp) run_dhcpcd "option routers" noarp ;;
		esac
		RES[$who]+="$MS "
		stop_pids
	done
	echo "round $i/$N done" >&2
done

echo "time from client start (link down) to address + default route, ms; $N rounds; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for who in hostd dhcpcd dhcpcd-noarp; do
	echo "$who: ${RES[$who]}"
done
python3 - "${RES[hostd]}" "${RES[dhcpcd]}" "${RES[dhcpcd-noarp]}" <<'PY'
import statistics, sys
names = ["hostd", "dhcpcd", "dhcpcd-noarp"]
med = {}
for name, arg in zip(names, sys.argv[1:]):
    xs = [int(x) for x in arg.split() if x.isdigit()]
    med[name] = statistics.median(xs) if xs else float("nan")
print(f"{'client':<14}{'median_ms':>10}{'min_ms':>8}{'max_ms':>8}{'vs_hostd':>10}")
for name, arg in zip(names, sys.argv[1:]):
    xs = [int(x) for x in arg.split() if x.isdigit()]
    print(f"{name:<14}{med[name]:>10.0f}{min(xs, default=0):>8}{max(xs, default=0):>8}{med[name]/med['hostd']:>10.2f}")
PY
