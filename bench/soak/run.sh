#!/usr/bin/env bash
# The soak: hostd with every service on at once (proxy, a backup job every
# minute, metrics, the netcfg DNS resolver, containers with a prune every
# minute, audio), under steady load for SOAK_DURATION, beside the daemons
# it replaces carrying the same load in the same run:
#   proxy       an xray client (same xray-core version), same transfers
#   metrics     node_exporter + Prometheus scraping it every 15 s
#   DNS         a caching dnsmasq answering the same queries
#   backup      restic run every minute on the same changing data
#   containers  `docker system prune -f` every minute
#   audio       pactl (a tool, no daemon: only its calls are made)
# Everything runs on this machine: loopback addresses, a private dockerd in
# its own network namespace, a private PipeWire stack; nothing is pulled.
#
# It fails (exit 1, saying why) on: any /readyz other than 200 (polled
# every 2 s), growth of hostd's goroutines, open fds or RSS after warm-up
# beyond the bounds in bench/soak/soakmon/report.go, a lost backup (a
# scheduled run without its snapshot), a failed request through hostd
# (proxy, audio) or a replaced daemon that died. Time never decides:
# every request has a generous deadline, and throughput is not judged.
#
# Prints hostd's RSS (idle, mean, peak) and CPU beside the replaced
# daemons', the ratios, and the issue's targets (idle <= 0.4x, any time
# <= 0.5x; SOAK_ENFORCE_TARGETS=1 makes a missed target fail the soak).
#
# Usage: [SOAK_DURATION=10m] [SOAK_WARMUP=..] [KEEP=1] bench/soak/run.sh
#   SOAK_DURATION  load time: 10m by default, 2m in CI
#   SOAK_WARMUP    load time before the growth baseline (default: a fifth
#                  of the duration, at least 30 s)
#   SOAK_SETTLE    sampling after the load stops (default 30 s)
#   SOAK_DNS_QPS   queries/s to each resolver (default 200)
#   SOAK_PROXY_BYTES  bytes per download through each proxy (4 MiB)
#   SOAK_GC_PERCENT  hostd.gc_percent in hostd's config (default: unset,
#                  hostd's own default of 100)
#   HOSTD_BIN, XRAY_BIN  use these binaries instead of building them (the
#                  xray client must be xray-core's main of go.mod's version)
# Needs root, go, make, dockerd, docker, busybox, unshare, restic,
# prometheus, prometheus-node-exporter, dnsmasq, dnsperf, dig, pipewire,
# wireplumber, pipewire-pulse, pactl, dbus-daemon, curl, python3,
# /usr/bin/time (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO_ROOT=$PWD
COMMAND="SOAK_DURATION=${SOAK_DURATION:-10m}${SOAK_GC_PERCENT:+ SOAK_GC_PERCENT=$SOAK_GC_PERCENT}${SOAK_ENFORCE_TARGETS:+ SOAK_ENFORCE_TARGETS=1}${HOSTD_BIN:+ HOSTD_BIN=$HOSTD_BIN}${XRAY_BIN:+ XRAY_BIN=$XRAY_BIN} bash bench/soak/run.sh"

secs() { # 90, 90s, 2m, 1h -> seconds
	case $1 in
	*h) echo $((${1%h} * 3600)) ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}
DURATION=$(secs "${SOAK_DURATION:-10m}")
WARMUP=$(secs "${SOAK_WARMUP:-$((DURATION / 5 > 30 ? DURATION / 5 : 30))}")
SETTLE=$(secs "${SOAK_SETTLE:-30}")
DNS_QPS=${SOAK_DNS_QPS:-200}
PROXY_BYTES=${SOAK_PROXY_BYTES:-4194304}
[[ -z ${SOAK_GC_PERCENT:-} || ${SOAK_GC_PERCENT} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: SOAK_GC_PERCENT must be a whole number (hostd.gc_percent)" >&2; exit 2; }
((DURATION >= 90)) || { echo "run.sh: SOAK_DURATION must be at least 90s (growth is judged after warm-up)" >&2; exit 2; }

for tool in go make dockerd /usr/bin/docker busybox unshare restic prometheus prometheus-node-exporter dnsmasq dnsperf dig \
	pipewire wireplumber pipewire-pulse pactl dbus-daemon curl python3 /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "run.sh: missing $tool (scripts/install-test-deps.sh installs it)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (private dockerd)" >&2; exit 1; }

T=$(mktemp -d /tmp/hostd-soak.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/bin" "$T/log" "$T/transient" "$T/load"
PIDS=()      # daemons, stopped in reverse order
LOOPS=()     # load loops
DOCKERD_PID=""
docker=/usr/bin/docker
export DOCKER_HOST=unix://$T/docker.sock

# stop PID: TERM, then KILL after 10 s; children of a load loop first.
stop() {
	local p=$1
	kill -0 "$p" 2>/dev/null || return 0
	pkill -TERM -P "$p" 2>/dev/null || true
	kill "$p" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	pkill -KILL -P "$p" 2>/dev/null || true
	kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	set +e
	for p in "${LOOPS[@]}"; do stop "$p"; done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop "${PIDS[$i]}"; done
	if [[ -n $DOCKERD_PID ]]; then
		stop "$DOCKERD_PID"
		grep -o " $T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	fi
	wait 2>/dev/null
	if ((rc != 0)); then
		echo "run.sh: failed (exit $rc); last lines of the logs:" >&2
		for f in "$T"/log/*.log; do [[ -s $f ]] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
	fi
	if [[ ${KEEP:-0} == 1 ]]; then echo "kept $T" >&2; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # SECONDS WHAT CMD...: retries CMD every 0.2 s
	local n=$(($1 * 5)) what=$2
	shift 2
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
	echo "run.sh: timed out waiting for $what" >&2
	return 1
}
log() { echo "[$(date +%T)] $*" >&2; }

# --- build -------------------------------------------------------------
log "building into $T: hostd (${HOSTD_BIN:-make build}), xray (${XRAY_BIN:-go install}), soakmon, proxybench"
# The binary users get (the Makefile's flags), installed by copying, as
# dpkg installs the replaced daemons (see bench/metrics/run.sh).
if [[ -n ${HOSTD_BIN:-} ]]; then
	install -m 0755 "$HOSTD_BIN" "$T/bin/hostd"
else
	make -s build BIN="$T/build/hostd"
	install -m 0755 "$T/build/hostd" "$T/bin/hostd"
fi
go build -o "$T/bin/soakmon" ./bench/soak/soakmon
go build -o "$T/bin/proxybench" ./bench/proxy/proxybench
XRAY_VERSION=$(go list -m -f '{{.Version}}' github.com/xtls/xray-core)
if [[ -n ${XRAY_BIN:-} ]]; then
	install -m 0755 "$XRAY_BIN" "$T/bin/xray"
else
	mkdir -p "$T/xraybuild"
	(cd "$T/xraybuild" && GOBIN="$T/xraybuild" GOFLAGS=-mod=mod go install "github.com/xtls/xray-core/main@$XRAY_VERSION")
	install -m 0755 "$T/xraybuild/main" "$T/bin/xray"
fi
HOSTD=$T/bin/hostd

# --- what both sides use ------------------------------------------------
# The proxy server: loopback VLESS+REALITY (xray-core) and the HTTP
# destination it reaches as dest.bench.test.
"$T/bin/proxybench" server >"$T/server.json" 2>"$T/log/proxyserver.log" &
PIDS+=($!)
wait_for 30 "proxy server" test -s "$T/server.json"
j() { python3 -c "import json,sys; print(json.load(open('$T/server.json'))['$1'])"; }
PHOST=$(j host) PPORT=$(j port) UUID=$(j user_id) PBK=$(j public_key) SID=$(j short_id) SNI=$(j server_name) DEST=$(j dest_host)

# The DNS upstream: an authoritative dnsmasq with N_NAMES names (TTL 1h),
# as bench/dns does; both resolvers forward to it.
AUTH=127.0.0.71 HOSTD_DNS=127.0.0.72 DNSMASQ=127.0.0.73
AUTH_PORT=$(free_port) HOSTD_DNS_PORT=$(free_port) DNSMASQ_PORT=$(free_port)
N_NAMES=2000
for i in $(seq 0 $((N_NAMES - 1))); do
	echo "192.0.2.$((i % 250 + 1)) host$i.soak.test"
	echo "host$i.soak.test A" >>"$T/queries.txt"
	# A quarter of the queries miss (AAAA of an A-only name): the negative
	# cache and the forwarding path get their share.
	((i % 4 == 0)) && echo "host$i.soak.test AAAA" >>"$T/queries.txt"
done >"$T/hosts"
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$T/hosts" \
	--local=/soak.test/ --local-ttl=3600 --cache-size=0 --bind-interfaces \
	--listen-address=$AUTH --port="$AUTH_PORT" --pid-file= --user=root 2>"$T/log/dns-auth.log" &
PIDS+=($!)

# A private dockerd (Debian's docker.io) in its own network namespace, as
# bench/containers does, and a local image from busybox-static.
unshare --net -- dockerd --data-root "$T/docker" --exec-root "$T/docker-exec" --pidfile "$T/dockerd.pid" \
	-H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false --log-level=error \
	--config-file <(echo '{}') >"$T/log/dockerd.log" 2>&1 &
DOCKERD_PID=$!
wait_for 60 dockerd curl -sf --max-time 2 --unix-socket "$T/docker.sock" http://docker/_ping
mkdir -p "$T/layer/bin"
cp "$(command -v busybox)" "$T/layer/bin/"
tar -C "$T/layer" -cf "$T/layer.tar" .
timeout 60 $docker import -c 'CMD ["/bin/busybox","true"]' "$T/layer.tar" soak:base >/dev/null

# A private, headless PipeWire stack (as internal/testenv/pipewire.go).
PW=$T/pw
mkdir -p "$PW"/{run,home,config/wireplumber/main.lua.d,config/wireplumber/bluetooth.lua.d,state,data}
chmod 700 "$PW/run"
printf 'alsa_monitor.enabled = false\nv4l2_monitor.enabled = false\nlibcamera_monitor.enabled = false\n' \
	>"$PW/config/wireplumber/main.lua.d/51-hostd-headless.lua"
echo 'bluez_monitor.enabled = false' >"$PW/config/wireplumber/bluetooth.lua.d/51-hostd-headless.lua"
pwenv=(env -u DBUS_SESSION_BUS_ADDRESS -u DISPLAY -u WAYLAND_DISPLAY -u PULSE_COOKIE
	XDG_RUNTIME_DIR="$PW/run" PIPEWIRE_RUNTIME_DIR="$PW/run" HOME="$PW/home" XDG_CONFIG_HOME="$PW/config"
	XDG_STATE_HOME="$PW/state" XDG_DATA_HOME="$PW/data" DBUS_SESSION_BUS_ADDRESS="unix:path=$PW/run/bus"
	PULSE_SERVER="unix:$PW/run/pulse/native" PIPEWIRE_LOG_SYSTEMD=false DISABLE_RTKIT=1)
"${pwenv[@]}" dbus-daemon --session --nofork --nopidfile --address="unix:path=$PW/run/bus" >"$T/log/dbus.log" 2>&1 &
PIDS+=($!)
wait_for 10 "session bus" test -S "$PW/run/bus"
"${pwenv[@]}" pipewire >"$T/log/pipewire.log" 2>&1 &
PIDS+=($!)
wait_for 10 pipewire test -S "$PW/run/pipewire-0"
"${pwenv[@]}" wireplumber >"$T/log/wireplumber.log" 2>&1 &
PIDS+=($!)
"${pwenv[@]}" pipewire-pulse >"$T/log/pipewire-pulse.log" 2>&1 &
PIDS+=($!)
pactl_() { timeout 20 "${pwenv[@]}" pactl "$@"; }
wait_for 20 pipewire-pulse pactl_ info
# One null sink for each side, so neither sees the other's changes.
for s in soak_hostd soak_pactl; do
	pactl_ load-module module-null-sink sink_name=$s "sink_properties=device.description=$s" >/dev/null
done
sinks_listed() { pactl_ list short sinks | grep -q soak_pactl; }
wait_for 10 "null sinks" sinks_listed

# The backup data: small and mid-sized files, changed during the soak.
python3 - "$T/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(1)
for d in range(20):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(50):
        size = rnd.choice([200, 2000, 20000, 200000])
        with open(f"{root}/d{d}/f{f}", "wb") as fh:
            fh.write(rnd.randbytes(size))
PY
export HOSTD_SOAK_BACKUP_PASSWORD=soak RESTIC_PASSWORD=soak
timeout 120 restic init -r "$T/repo-restic" >/dev/null 2>&1

# --- the daemons hostd replaces ---------------------------------------
NE_PORT=$(free_port) PROM_PORT=$(free_port) X_SOCKS=$(free_port) X_HTTP=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" >"$T/log/node_exporter.log" 2>&1 &
NE_PID=$!
PIDS+=($NE_PID)
cat >"$T/prometheus.yml" <<CFG
global:
  scrape_interval: 15s
  scrape_timeout: 10s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$NE_PORT']
CFG
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$T/log/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS+=($PROM_PID)
cat >"$T/xray.json" <<JSON
{
  "log": {"loglevel": "warning"},
  "inbounds": [
    {"tag": "socks", "listen": "127.0.0.1", "port": $X_SOCKS, "protocol": "socks", "settings": {"udp": true}},
    {"tag": "http", "listen": "127.0.0.1", "port": $X_HTTP, "protocol": "http"}
  ],
  "outbounds": [
    {"tag": "proxy", "protocol": "vless",
     "settings": {"vnext": [{"address": "$PHOST", "port": $PPORT,
       "users": [{"id": "$UUID", "flow": "xtls-rprx-vision", "encryption": "none"}]}]},
     "streamSettings": {"network": "tcp", "security": "reality",
       "realitySettings": {"serverName": "$SNI", "fingerprint": "chrome", "publicKey": "$PBK", "shortId": "$SID", "spiderX": "/"}}},
    {"tag": "direct", "protocol": "freedom"}
  ],
  "routing": {"rules": [
    {"ip": ["127.0.0.0/8", "::1/128"], "outboundTag": "direct"}
  ]}
}
JSON
"$T/bin/xray" run -c "$T/xray.json" >"$T/log/xray.log" 2>&1 &
XRAY_PID=$!
PIDS+=($XRAY_PID)
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	--server=$AUTH#"$AUTH_PORT" --cache-size=10000 --bind-interfaces \
	--listen-address=$DNSMASQ --port="$DNSMASQ_PORT" --pid-file= --user=root 2>"$T/log/dnsmasq.log" &
DNSMASQ_PID=$!
PIDS+=($DNSMASQ_PID)
wait_for 30 node_exporter curl -fsS --max-time 2 "http://127.0.0.1:$NE_PORT/metrics"
wait_for 60 prometheus curl -fsS --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready"
wait_for 30 "xray client" curl -fsS --max-time 5 --noproxy '' --socks5-hostname "127.0.0.1:$X_SOCKS" "http://$DEST/small"
wait_for 30 dnsmasq dig @$DNSMASQ -p "$DNSMASQ_PORT" +time=1 +tries=1 host1.soak.test A

# --- hostd, every service on ------------------------------------------
HTTP_PORT=$(free_port) H_SOCKS=$(free_port) H_HTTP=$(free_port)
cat >"$T/hostd.yaml" <<YAML
hostd:
  log_level: info
  log_format: text${SOAK_GC_PERCENT:+
  gc_percent: $SOAK_GC_PERCENT}
  state_dir: $T/hostd-state
  socket: $T/hostd.sock
  http: {listen: "127.0.0.1:$HTTP_PORT"}
netcfg:
  enable: true
  dns:
    enable: true
    listen: "$HOSTD_DNS:$HOSTD_DNS_PORT"
    upstreams: ["$AUTH:$AUTH_PORT"]
    hosts_file: ""
metrics:
  enable: true
  interval: 15s
proxy:
  enable: true
  socks: {listen: "127.0.0.1:$H_SOCKS"}
  http: {listen: "127.0.0.1:$H_HTTP"}
  server:
    address: "$PHOST"
    port: "$PPORT"
    user_id: "$UUID"
    public_key: "$PBK"
    short_id: "$SID"
  server_name: "$SNI"
  health_url: "http://$DEST/generate_204"
backup:
  enable: true
  jobs:
    soak:
      repository: $T/repo-hostd
      paths: [$T/data]
      schedule: minutely
      password: env:HOSTD_SOAK_BACKUP_PASSWORD
      init: true
      # Every snapshot stays, so snapshots can be counted against runs.
      retention: {keep_last: 100000}
containers:
  enable: true
  host: $DOCKER_HOST
  root_dir: $T/docker
  auto_prune:
    schedule: minutely
audio:
  enable: true
  server: unix:$PW/run/pulse/native
YAML
"$HOSTD" config check "$T/hostd.yaml" >/dev/null
hcli() { timeout 60 "$HOSTD" -c "$T/hostd.yaml" "$@"; }

# hostd's backup job and prune run at each minute's start; the idle
# window must fall before the first of them. Start hostd early in a
# minute, so the idle window is the rest of that minute.
while (($(date +%-S) > 5)); do sleep 1; done
log "starting hostd (every service on)"
"$HOSTD" run -c "$T/hostd.yaml" >"$T/log/hostd.log" 2>&1 &
HOSTD_PID=$!
PIDS+=($HOSTD_PID)
if ! wait_for 60 "hostd /readyz 200" curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/readyz"; then
	curl -sS --max-time 5 "http://127.0.0.1:$HTTP_PORT/readyz" >&2 || true
	exit 1
fi
READY_AT=$(date +%s)
sleep 5 # hostd releases its start-up code pages once ready

# --- idle window, then load -----------------------------------------
IDLE_START=$(date +%s.%N)
LOAD_START=$(($(date +%s) / 60 * 60 + 57)) # 3 s before hostd's first job
((LOAD_START - $(date +%s) >= 10)) || { echo "run.sh: hostd took until second $(date +%-S) to be ready: no idle window before its first job" >&2; exit 1; }
LOAD_END=$((LOAD_START + DURATION))
SAMPLE_UNTIL=$((LOAD_END + SETTLE))
"$T/bin/soakmon" sample -out "$T/samples.jsonl" -until "$SAMPLE_UNTIL" -interval 2s -hostd "$HOSTD_PID" \
	-http "127.0.0.1:$HTTP_PORT" -transient-dir "$T/transient" \
	-daemon "node_exporter=$NE_PID" -daemon "prometheus=$PROM_PID" -daemon "xray=$XRAY_PID" -daemon "dnsmasq=$DNSMASQ_PID" \
	2>"$T/log/soakmon.log" &
SAMPLER_PID=$!
PIDS+=($SAMPLER_PID)
log "idle window until $(date -d @"$LOAD_START" +%T), then ${DURATION}s of load (warm-up ${WARMUP}s), then ${SETTLE}s after"
while (($(date +%s) < LOAD_START)); do sleep 0.5; done

# Every loop below stops by itself at LOAD_END and runs at most a fixed
# number of rounds; every call has a deadline. Failures are counted in
# $T/load/NAME.err, one line each.
fail_note() { echo "$(date +%T) $*" >>"$T/load/$1.err"; }

# Proxy: each second, one download of PROXY_BYTES through SOCKS5 and one
# through HTTP, and 5 small requests, for hostd and xray alike.
proxy_loop() { # NAME SOCKS_PORT HTTP_PORT
	local name=$1 socks=$2 http=$3 n=0
	while ((n < DURATION * 2 && $(date +%s) < LOAD_END)); do
		n=$((n + 1))
		for a in "--socks5-hostname 127.0.0.1:$socks" "-x http://127.0.0.1:$http"; do
			# shellcheck disable=SC2086
			got=$(curl -sS --fail --noproxy '' --max-time 60 -o /dev/null -w '%{size_download}' $a "http://$DEST/bytes?n=$PROXY_BYTES" 2>&1) &&
				[[ $got == "$PROXY_BYTES" ]] || fail_note "$name" "download via $a: $got"
			for _ in 1 2 3 4 5; do
				# shellcheck disable=SC2086
				curl -sS --fail --noproxy '' --max-time 60 -o /dev/null $a "http://$DEST/small" 2>/dev/null || fail_note "$name" "small via $a"
			done
		done
		echo ok >>"$T/load/$name.rounds"
		sleep 1
	done
}
proxy_loop proxy-hostd "$H_SOCKS" "$H_HTTP" &
LOOPS+=($!)
proxy_loop proxy-xray "$X_SOCKS" "$X_HTTP" &
LOOPS+=($!)

# DNS: a fixed rate of queries to each resolver for the whole load.
for side in hostd dnsmasq; do
	if [[ $side == hostd ]]; then addr=$HOSTD_DNS port=$HOSTD_DNS_PORT; else addr=$DNSMASQ port=$DNSMASQ_PORT; fi
	timeout $((DURATION + 60)) dnsperf -s "$addr" -p "$port" -d "$T/queries.txt" -l "$DURATION" -Q "$DNS_QPS" -c 2 -t 5 \
		>"$T/load/dns-$side.out" 2>&1 &
	LOOPS+=($!)
done

# Backup data: every 20 s, rewrite 3% of the files and add one.
data_loop() {
	local n=0
	while ((n < DURATION / 20 + 1 && $(date +%s) < LOAD_END)); do
		n=$((n + 1))
		python3 - "$T/data" "$n" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(n)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
for p in rnd.sample(files, max(1, len(files) * 3 // 100)):
    with open(p, "wb") as fh:
        fh.write(rnd.randbytes(rnd.choice([200, 2000, 20000, 200000])))
with open(f"{root}/d{n % 20}/new{n}", "wb") as fh:
    fh.write(rnd.randbytes(50000))
PY
		sleep 20
	done
}
data_loop &
LOOPS+=($!)

# timed NAME CMD...: runs CMD under /usr/bin/time (peak RSS, CPU) with its
# pid in $T/transient for the sampler.
timed() {
	local name=$1
	shift
	/usr/bin/time -a -o "$T/load/$name.time" -f "$(date +%s.%N) %M %U %S %e" timeout 300 "$@" >>"$T/log/$name.log" 2>&1 &
	local p=$!
	echo "$p" >"$T/transient/$name.pid"
	wait "$p" || fail_note "$name" "exit $?"
	rm -f "$T/transient/$name.pid"
}
# at_second S: sleeps until second S of the next minute (or of this one).
at_second() {
	local now s
	now=$(date +%s)
	s=$((now / 60 * 60 + $1))
	((s <= now)) && s=$((s + 60))
	sleep $((s - now))
}
# restic every minute, at the minute's start as hostd's job.
restic_loop() {
	local n=0
	while ((n < DURATION / 60 + 1)); do
		at_second 0
		(($(date +%s) < LOAD_END)) || break
		n=$((n + 1))
		timed restic restic -r "$T/repo-restic" --cache-dir "$T/restic-cache" backup -q "$T/data"
	done
}
restic_loop &
LOOPS+=($!)
# docker system prune -f every minute, at second 30: two prunes at once on
# one engine fail ("a prune operation is already running"), and hostd's
# runs at second 0.
prune_loop() {
	local n=0
	while ((n < DURATION / 60 + 1)); do
		at_second 30
		(($(date +%s) < LOAD_END)) || break
		n=$((n + 1))
		timed docker-prune $docker system prune -f
	done
}
prune_loop &
LOOPS+=($!)
# Container churn: every 5 s, create 3 containers, remove one, import a
# dangling image and create a network; prunes take the rest.
churn_loop() {
	local n=0 ids=()
	while ((n < DURATION / 5 + 1 && $(date +%s) < LOAD_END)); do
		n=$((n + 1))
		for _ in 1 2 3; do
			id=$(timeout 60 $docker create --network none soak:base 2>>"$T/log/churn.log") && ids+=("$id") || fail_note churn create
		done
		if ((${#ids[@]} > 0)); then
			timeout 60 $docker rm -f "${ids[0]}" >/dev/null 2>&1 || true # a prune may have taken it
			ids=("${ids[@]:1}")
		fi
		timeout 60 $docker import "$T/layer.tar" >/dev/null 2>>"$T/log/churn.log" || fail_note churn import
		timeout 60 $docker network create "soak-$n" >/dev/null 2>>"$T/log/churn.log" || fail_note churn network
		sleep 5
	done
}
churn_loop &
LOOPS+=($!)
# Audio: every 2 s, a volume change and a mute toggle through `hostd
# audio` (the daemon's pulse connection), and the same with pactl.
audio_loop() {
	local n=0 v
	while ((n < DURATION / 2 + 1 && $(date +%s) < LOAD_END)); do
		n=$((n + 1))
		v=$((20 + n % 60))
		hcli audio volume soak_hostd "$v%" >/dev/null 2>>"$T/log/audio-hostd.log" || fail_note audio-hostd "volume $v%"
		hcli audio mute soak_hostd toggle >/dev/null 2>>"$T/log/audio-hostd.log" || fail_note audio-hostd "mute toggle"
		pactl_ set-sink-volume soak_pactl "$v%" 2>>"$T/log/audio-pactl.log" || fail_note audio-pactl "volume $v%"
		pactl_ set-sink-mute soak_pactl toggle 2>>"$T/log/audio-pactl.log" || fail_note audio-pactl "mute toggle"
		echo ok >>"$T/load/audio.rounds"
		sleep 2
	done
}
audio_loop &
LOOPS+=($!)

# Wait for the load to end; loops still in a call get its deadline.
while (($(date +%s) < LOAD_END)); do sleep 1; done
log "load over; waiting for the loops and for running jobs"
for p in "${LOOPS[@]}"; do
	for _ in $(seq 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
	stop "$p"
done
LOOPS=()

# --- backups: every scheduled run made a snapshot ----------------------
metric() { curl -fsS --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }
for _ in $(seq 120); do [[ $(metric 'hostd_backup_running{') == 0 ]] && break; sleep 1; done
while (($(date +%s) < SAMPLE_UNTIL)); do sleep 1; done
wait "$SAMPLER_PID" || true
# Scheduled runs: each minute's start from hostd's start to the end of
# the load (every one of them is over: running is 0 and the settle
# window has passed).
SCHEDULED=$(((LOAD_END / 60) - (READY_AT / 60)))
SUCCEEDED=$(metric 'hostd_backup_runs_total{job="soak",result="success"}')
FAILED=$(($(metric 'hostd_backup_runs_total{job="soak"') - SUCCEEDED))
SNAPSHOTS=$(HOSTD_BACKUP_PASSWORD=soak timeout 120 "$HOSTD" backup snapshots -r "$T/repo-hostd" --json |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin) or []))')
RESTIC_SNAPSHOTS=$(timeout 120 restic -r "$T/repo-restic" --cache-dir "$T/restic-cache" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

# --- report -------------------------------------------------------------
echo
echo "soak: hostd $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo dev), ${DURATION}s of load, $(nproc) cores," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg); $(restic version | cut -d' ' -f1-2), xray $XRAY_VERSION," \
	"$(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3), $(dnsmasq --version | head -1 | cut -d' ' -f1-3)"
echo "load: proxy $(wc -l <"$T/load/proxy-hostd.rounds" 2>/dev/null || echo 0) rounds via hostd, $(wc -l <"$T/load/proxy-xray.rounds" 2>/dev/null || echo 0) via xray" \
	"(each: 2 x $PROXY_BYTES bytes + 10 small requests); audio $(wc -l <"$T/load/audio.rounds" 2>/dev/null || echo 0) rounds;" \
	"restic $RESTIC_SNAPSHOTS snapshots"
for side in hostd dnsmasq; do
	echo "dns $side: $(awk '/Queries sent|Queries completed|Queries lost/ {printf "%s ", $0}' "$T/load/dns-$side.out" | tr -s ' ')"
done
LOAD_FAILED=0
for f in "$T"/load/*.err; do
	[[ -e $f ]] || continue
	name=$(basename "$f" .err)
	echo "errors in $name: $(wc -l <"$f") (first: $(head -1 "$f"))"
	case $name in proxy-hostd | audio-hostd) LOAD_FAILED=1 ;; esac
done
set +e
"$T/bin/soakmon" report -samples "$T/samples.jsonl" -idle-start "$IDLE_START" -load-start "$LOAD_START" -load-end "$LOAD_END" \
	-warmup "${WARMUP}s" -transient "restic=$T/load/restic.time" -transient "docker prune=$T/load/docker-prune.time" \
	-backups-scheduled "$SCHEDULED" -backups-succeeded "$SUCCEEDED" -backups-failed "$FAILED" -backup-snapshots "$SNAPSHOTS" \
	${SOAK_ENFORCE_TARGETS:+-enforce-targets} -command "$COMMAND"
RC=$?
set -e
if ((LOAD_FAILED)); then
	echo "SOAK FAILED: requests through hostd failed (see above)"
	RC=1
fi
((RC == 0)) || cp "$T/log/hostd.log" "/tmp/hostd-soak-last-hostd.log" 2>/dev/null || true
exit $RC
