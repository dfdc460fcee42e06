#!/usr/bin/env bash
# Benchmarks hostd's proxy against a standalone xray client built from the
# same xray-core module version, on the same loopback VLESS+REALITY server,
# and against a direct download, in one run:
#   - throughput of one large download (default 1 GiB) through the SOCKS5
#     and HTTP inbounds,
#   - mean time of N small requests (default 200, one curl each),
#   - peak RSS (VmHWM) of the two proxy clients.
# Everything stays on 127.0.0.1.
# Usage: [XRAY_STATS=1] bench/proxy/run.sh [SIZE_BYTES] [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZE=${1:-1073741824}
N=${2:-200}
ROUNDS=${3:-3}
T=$(mktemp -d /tmp/hostd-proxybench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

XRAY_VERSION=$(go list -m -f '{{.Version}}' github.com/xtls/xray-core)
echo "building proxybench and xray $XRAY_VERSION into $T" >&2
go build -o "$T/proxybench" ./bench/proxy/proxybench
(cd "$T" && GOBIN="$T" GOFLAGS=-mod=mod go install "github.com/xtls/xray-core/main@$XRAY_VERSION")
mv "$T/main" "$T/xray"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "port $1 did not open" >&2
	return 1
}

"$T/proxybench" server >"$T/server.json" &
PIDS+=($!)
for _ in $(seq 300); do [[ -s "$T/server.json" ]] && break; sleep 0.05; done
[[ -s "$T/server.json" ]] || { echo "server did not start" >&2; exit 1; }
j() { python3 -c "import json,sys; print(json.load(open('$T/server.json'))['$1'])"; }
HOST=$(j host) SPORT=$(j port) UUID=$(j user_id) PBK=$(j public_key) SID=$(j short_id) SNI=$(j server_name)
DEST_HOST=$(j dest_host) DEST_ADDR=$(j dest_addr)

H_SOCKS=$(port) H_HTTP=$(port) X_SOCKS=$(port) X_HTTP=$(port)
"$T/proxybench" client -server "$T/server.json" -socks "127.0.0.1:$H_SOCKS" -http "127.0.0.1:$H_HTTP" &
HOSTD_PID=$!
PIDS+=($HOSTD_PID)

# XRAY_STATS=1 turns on the traffic counters in the standalone client too,
# as hostd always has them (for its metrics).
STATS_JSON=""
if [[ "${XRAY_STATS:-0}" == 1 ]]; then
	STATS_JSON='"stats": {}, "policy": {"system": {"statsInboundUplink": true, "statsInboundDownlink": true, "statsOutboundUplink": true, "statsOutboundDownlink": true}},'
fi
cat >"$T/xray.json" <<JSON
{
  "log": {"loglevel": "warning"},
  $STATS_JSON
  "inbounds": [
    {"tag": "socks", "listen": "127.0.0.1", "port": $X_SOCKS, "protocol": "socks", "settings": {"udp": true}},
    {"tag": "http", "listen": "127.0.0.1", "port": $X_HTTP, "protocol": "http"}
  ],
  "outbounds": [
    {"tag": "proxy", "protocol": "vless",
     "settings": {"vnext": [{"address": "$HOST", "port": $SPORT,
       "users": [{"id": "$UUID", "flow": "xtls-rprx-vision", "encryption": "none"}]}]},
     "streamSettings": {"network": "tcp", "security": "reality",
       "realitySettings": {"serverName": "$SNI", "fingerprint": "chrome", "publicKey": "$PBK", "shortId": "$SID", "spiderX": "/"}}},
    {"tag": "direct", "protocol": "freedom"}
  ],
  "routing": {"rules": [
    {"domain": ["domain:localhost"], "outboundTag": "direct"},
    {"ip": ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10"], "outboundTag": "direct"}
  ]}
}
JSON
"$T/xray" run -c "$T/xray.json" >"$T/xray.log" 2>&1 &
XRAY_PID=$!
PIDS+=($XRAY_PID)
for p in "$H_SOCKS" "$H_HTTP" "$X_SOCKS" "$X_HTTP"; do wait_port "$p"; done

BIG="http://$DEST_HOST/bytes?n=$SIZE"
SMALL="http://$DEST_HOST/small"
DIRECT_BIG="http://$DEST_ADDR/bytes?n=$SIZE"
DIRECT_SMALL="http://$DEST_ADDR/small"

# download ARGS... URL: prints bytes/s of one download.
download() {
	local out
	out=$(curl -sS --fail --noproxy '' -o /dev/null -w '%{size_download} %{speed_download}' "$@")
	local got=${out% *}
	[[ "$got" == "$SIZE" ]] || { echo "downloaded $got bytes, want $SIZE ($*)" >&2; exit 1; }
	echo "${out#* }"
}
# small ARGS... URL: prints the mean seconds per request of N requests.
small() {
	local start end
	start=$(date +%s.%N)
	for _ in $(seq "$N"); do curl -sS --fail --noproxy '' -o /dev/null "$@"; done
	end=$(date +%s.%N)
	python3 -c "print(($end - $start) / $N)"
}
# Warm up every path once (REALITY handshakes, xray's first dial).
for a in "--socks5-hostname 127.0.0.1:$H_SOCKS" "-x http://127.0.0.1:$H_HTTP" "--socks5-hostname 127.0.0.1:$X_SOCKS" "-x http://127.0.0.1:$X_HTTP"; do
	# shellcheck disable=SC2086
	curl -sS --fail --noproxy '' -o /dev/null $a "$SMALL"
done

declare -A TP LAT
PATHS=(direct hostd_socks xray_socks hostd_http xray_http)
args_for() {
	case $1 in
	direct) ARGS=() BIGURL=$DIRECT_BIG SMALLURL=$DIRECT_SMALL ;;
	hostd_socks) ARGS=(--socks5-hostname "127.0.0.1:$H_SOCKS") BIGURL=$BIG SMALLURL=$SMALL ;;
	xray_socks) ARGS=(--socks5-hostname "127.0.0.1:$X_SOCKS") BIGURL=$BIG SMALLURL=$SMALL ;;
	hostd_http) ARGS=(-x "http://127.0.0.1:$H_HTTP") BIGURL=$BIG SMALLURL=$SMALL ;;
	xray_http) ARGS=(-x "http://127.0.0.1:$X_HTTP") BIGURL=$BIG SMALLURL=$SMALL ;;
	esac
}
# The machine is shared: each path is measured ROUNDS times, the order of
# paths rotating between rounds, and the best round counts.
echo "measuring: $SIZE-byte download and $N small requests per path, best of $ROUNDS rounds" >&2
for r in $(seq "$ROUNDS"); do
	for i in "${!PATHS[@]}"; do
		p=${PATHS[$(((i + r) % ${#PATHS[@]}))]}
		args_for "$p"
		tp=$(download "${ARGS[@]}" "$BIGURL")
		lat=$(small "${ARGS[@]}" "$SMALLURL")
		TP[$p]=$(python3 -c "print(max($tp, ${TP[$p]:-0}))")
		LAT[$p]=$(python3 -c "print(min($lat, ${LAT[$p]:-1e9}))")
		echo "round $r $p: $(python3 -c "print(f'{$tp/1048576:.1f} MiB/s, {$lat*1000:.2f} ms/request')")" >&2
	done
done

rss() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
HOSTD_RSS=$(rss "$HOSTD_PID")
XRAY_RSS=$(rss "$XRAY_PID")

python3 - "$SIZE" "$N" "$HOSTD_RSS" "$XRAY_RSS" \
	"${TP[direct]}" "${LAT[direct]}" "${TP[hostd_socks]}" "${LAT[hostd_socks]}" "${TP[xray_socks]}" "${LAT[xray_socks]}" \
	"${TP[hostd_http]}" "${LAT[hostd_http]}" "${TP[xray_http]}" "${LAT[xray_http]}" <<'PY'
import sys
a = sys.argv[1:]
size, n, hrss, xrss = int(a[0]), int(a[1]), int(a[2]), int(a[3])
v = list(map(float, a[4:]))
d_tp, d_lat = v[0], v[1]
rows = [("hostd socks5", v[2], v[3], v[4], v[5]), ("hostd http", v[6], v[7], v[8], v[9])]
mib = 1 << 20
print(f"download {size} bytes, {n} small requests; MiB/s and ms per request")
print(f"{'path':14} {'MiB/s':>8} {'x xray':>7} {'x direct':>8} {'ms/req':>7} {'+ms vs xray':>11} {'+ms vs direct':>13}")
print(f"{'direct':14} {d_tp/mib:8.1f} {'':>7} {1:8.2f} {d_lat*1e3:7.2f} {'':>11} {0:13.2f}")
for name, tp, lat, xtp, xlat in rows:
    print(f"{name:14} {tp/mib:8.1f} {tp/xtp:7.2f} {tp/d_tp:8.2f} {lat*1e3:7.2f} {(lat-xlat)*1e3:11.2f} {(lat-d_lat)*1e3:13.2f}")
    xname = name.replace("hostd", "xray")
    print(f"{xname:14} {xtp/mib:8.1f} {1:7.2f} {xtp/d_tp:8.2f} {xlat*1e3:7.2f} {0:11.2f} {(xlat-d_lat)*1e3:13.2f}")
print(f"peak RSS: hostd proxy {hrss/1024:.1f} MiB, xray {xrss/1024:.1f} MiB, ratio {hrss/xrss:.2f}")
PY
