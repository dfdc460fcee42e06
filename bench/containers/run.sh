#!/usr/bin/env bash
# Times hostd's prune against `docker system prune -f` on twin setups in a
# private dockerd (Debian's docker.io, own data root and network
# namespace), and prints both times and their ratio.
#
#   bench/containers/run.sh [CONTAINERS] [IMAGES] [NETWORKS]
#
# HOSTD_BIN=path uses a built hostd instead of building one.
# Needs root, dockerd, /usr/bin/docker, busybox-static, unshare, curl, go.
set -euo pipefail
ncont=${1:-100} nimg=${2:-30} nnet=${3:-20}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/hostd-bench-containers.XXXXXX)
sock=$work/docker.sock
export DOCKER_HOST=unix://$sock
docker=/usr/bin/docker

cleanup() {
	[[ -n ${hostd_pid:-} ]] && kill "$hostd_pid" 2>/dev/null && wait "$hostd_pid" 2>/dev/null || true
	[[ -f $work/dockerd.pid ]] && kill "$(cat "$work/dockerd.pid")" 2>/dev/null || true
	for _ in $(seq 100); do [[ -S $sock ]] || break; sleep 0.1; done
	grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

if [[ -n ${HOSTD_BIN:-} ]]; then
	cp "$HOSTD_BIN" "$work/hostd"
else
	go build -o "$work/hostd" "$repo/cmd/hostd"
fi
unshare --net -- dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
	-H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false --log-level=error \
	--config-file <(echo '{}') 2>"$work/dockerd.log" &
for _ in $(seq 300); do curl -sf --unix-socket "$sock" http://docker/_ping >/dev/null && break; sleep 0.1; done

mkdir -p "$work/root/bin"
cp /bin/busybox "$work/root/bin/"
tar -C "$work/root" -cf "$work/layer.tar" .

cat >"$work/hostd.yaml" <<YAML
hostd:
  state_dir: $work/state
  socket: $work/hostd.sock
  http: {listen: ""}
netcfg: {enable: false}
metrics: {enable: false}
containers:
  enable: true
  host: $DOCKER_HOST
  auto_prune: {schedule: yearly, high_watermark: "", low_watermark: ""}
YAML
"$work/hostd" run -c "$work/hostd.yaml" >"$work/hostd.log" 2>&1 &
hostd_pid=$!
for _ in $(seq 100); do "$work/hostd" -c "$work/hostd.yaml" containers status >/dev/null 2>&1 && break; sleep 0.1; done

world() {
	$docker import -c 'CMD ["/bin/busybox","true"]' "$work/layer.tar" bench:base >/dev/null
	for i in $(seq "$nimg"); do $docker import "$work/layer.tar" >/dev/null; done
	for i in $(seq "$nnet"); do $docker network create "bench-net-$i" >/dev/null; done
	for i in $(seq "$ncont"); do $docker create --network none bench:base >/dev/null; done
}
count() { echo $(($($docker ps -aq | wc -l) + $($docker images -aq | wc -l) + $($docker network ls -q --filter type=custom | wc -l))); }
now() { date +%s.%N; }

world
before=$(count)
t0=$(now)
"$work/hostd" -c "$work/hostd.yaml" containers prune >/dev/null
t1=$(now)
hostd_left=$(count)
$docker rmi -f bench:base >/dev/null

world
t2=$(now)
$docker system prune -f >/dev/null
t3=$(now)
docker_left=$(count)

awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v n="$before" -v hl="$hostd_left" -v dl="$docker_left" \
	-v nc="$ncont" -v ni="$nimg" -v nn="$nnet" 'BEGIN {
	h = t1 - t0; d = t3 - t2
	printf "objects: %d (%d stopped containers, %d dangling images, %d unused networks, 1 image)\n", n, nc, ni, nn
	printf "hostd containers prune:  %.3fs (%d objects left)\n", h, hl
	printf "docker system prune -f:  %.3fs (%d objects left)\n", d, dl
	printf "ratio hostd/docker:      %.2f\n", h / d
}'
