#!/usr/bin/env bash
# Benchmarks hostd's backup engine against restic and borg (Debian
# packages) side by side, in one run, on the same inputs:
#   goroot  a copy of $(go env GOROOT) (~15k files)
#   gen     a generated set of large files (default 1 GiB, 30% duplicated)
# For each: first backup, unchanged re-run, re-run after changing 5% of
# the files, full restore, repository size after the first backup, and
# the peak RSS over all runs. Every timed step runs BENCH_REPS times,
# interleaving the tools, and the fastest run counts (the machine is
# shared, so the minimum is the figure least distorted by other load);
# the s3 table also lists every run's time and the ratio of each pair of
# runs, so the spread shows. Which tool goes first alternates from one
# repetition to the next, so no tool always runs right after another's
# step (its writeback, its page-cache use); each timed step starts after
# a sync, whichever tool it is.
# Prints a markdown table with the ratios hostd/restic and hostd/borg.
#
# Environment: BENCH_DIR (work dir, default a new dir under /var/tmp,
# removed at the end unless BENCH_KEEP=1), BENCH_SIZE (bytes of the
# generated set), BENCH_SETS (default "goroot gen"), BENCH_REPS (3),
# BENCH_BACKENDS ("local", the default: repositories in the work dir;
# "s3": hostd and restic, which speaks S3 natively, against one SeaweedFS
# S3 server on loopback, each repository a prefix of one bucket, with the
# S3 requests of each step counted from the server's metrics, after a
# warm-up write of 64 MiB that no tool pays for; borg has no S3 backend
# and sits this one out). The s3 mode runs the weed binary
# the tests build (internal/testenv, cached under
# ~/.cache/hostd-test/weed-VERSION) and builds it the same way if it is
# missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

BACKENDS=${BENCH_BACKENDS:-local}
case $BACKENDS in
local) NEED=(restic borg /usr/bin/time go) ;;
s3) NEED=(restic rclone curl /usr/bin/time go) ;;
*) echo "run.sh: BENCH_BACKENDS=$BACKENDS: want local or s3" >&2; exit 2 ;;
esac
for tool in "${NEED[@]}"; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (scripts/install-test-deps.sh installs it)" >&2; exit 1; }
done

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hostd-bench.XXXXXX)}
SIZE=${BENCH_SIZE:-1073741824}
SETS=${BENCH_SETS:-goroot gen}
REPS=${BENCH_REPS:-3}
mkdir -p "$WORK"
WEED_PID=
cleanup() {
	if [[ -n $WEED_PID ]]; then kill -9 -- "-$WEED_PID" 2>/dev/null || true; fi
	if [[ ${BENCH_KEEP:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

export HOSTD_BACKUP_PASSWORD=bench RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench
export BORG_BASE_DIR=$WORK/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
HOSTD=$WORK/hostd
# Built as the Makefile builds it: static, without cgo.
CGO_ENABLED=0 go build -trimpath -o "$HOSTD" ./cmd/hostd
go build -o "$WORK/gendata" ./bench/backup/gendata

declare -A R          # R[set,tool,metric]
declare -A REPO CACHE # REPO[set,tool], CACHE[set,tool]: the current ones

# DELETIONS: nothing with many files is deleted before the end of the
# run (the work dir needs about 6 GiB). Deleting 15k restored files
# between restores made the next restore slow, whichever tool it was:
# ext4 without a journal, as here, skips recently deleted inodes when it
# allocates new ones (for up to 5 minutes while their inode table blocks
# are dirty), and a restore right after a deletion spent most of its time
# in that scan. For the same reason, start a run some minutes after the
# last one ended (its work directory was just deleted), or run several
# in a row with BENCH_KEEP=1 and a BENCH_DIR each, and delete those after
# the last.
TOOLS=(hostd restic borg)

# s3 mode: one SeaweedFS server (master, volume, filer, S3 gateway in one
# process) on loopback ports, as internal/testenv starts it.
if [[ $BACKENDS == s3 ]]; then
	TOOLS=(hostd restic)
	WEED_VERSION=$(sed -n 's/^const WeedVersion = "\(.*\)"/\1/p' internal/testenv/seaweedfs.go)
	WEED=${XDG_CACHE_HOME:-$HOME/.cache}/hostd-test/weed-$WEED_VERSION/weed
	if [[ ! -x $WEED ]]; then
		echo "run.sh: building weed $WEED_VERSION (minutes)" >&2
		moddir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$WEED_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
		src=$(mktemp -d /tmp/hostd-weed-src-XXXXXX)
		cp -r "$moddir/." "$src/" && chmod -R u+w "$src"
		mkdir -p "$(dirname "$WEED")"
		(cd "$src" && GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 go build -o "$WEED.tmp-$$" ./weed)
		mv "$WEED.tmp-$$" "$WEED"
		rm -rf "$src"
	fi
	freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
	S3PORT=$(freeport) METRICS=$(freeport)
	export AWS_ACCESS_KEY_ID=bench$RANDOM AWS_SECRET_ACCESS_KEY=bench$RANDOM$RANDOM$RANDOM
	mkdir -p "$WORK/weed/data"
	printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/weed/s3.json"
	setsid "$WEED" server -s3 -filer -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WORK/weed/data" \
		-master.port="$(freeport)" -master.port.grpc="$(freeport)" -volume.port="$(freeport)" -volume.port.grpc="$(freeport)" \
		-filer.port="$(freeport)" -filer.port.grpc="$(freeport)" -filer.localSocket="$WORK/weed/filer.sock" \
		-s3.port="$S3PORT" -s3.port.grpc="$(freeport)" -s3.port.iceberg=0 -s3.port.lance=0 \
		-s3.config="$WORK/weed/s3.json" -metricsPort="$METRICS" -metricsIp=127.0.0.1 \
		-master.volumeSizeLimitMB=256 -volume.max=200 -master.telemetry=false >"$WORK/weed/log" 2>&1 &
	WEED_PID=$!
	disown "$WEED_PID"
	for _ in $(seq 300); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3PORT/" || true)
		[[ $code =~ ^[234] ]] && break
		sleep 0.3
	done
	[[ $code =~ ^[234] ]] || { echo "run.sh: seaweedfs did not start:" >&2; tail -20 "$WORK/weed/log" >&2; exit 1; }
	S3=http://127.0.0.1:$S3PORT
	# rclone measures the repositories' sizes (what each prefix holds);
	# its S3 client refuses to start with $AWS_CA_BUNDLE set.
	export RCLONE_CONFIG=$WORK/rclone.conf RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=SeaweedFS \
		RCLONE_CONFIG_BENCH_ENDPOINT=$S3 RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
		RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
	: >"$RCLONE_CONFIG"
	# Warm-up: a fresh server's first large writes cost more than later
	# ones (its heap, buffers and connections grow): four 16 MiB objects
	# are written and removed before any timed step, so the tool that
	# goes first does not pay for it.
	mkdir -p "$WORK/warmup"
	for i in 1 2 3 4; do head -c 16777216 /dev/urandom >"$WORK/warmup/$i"; done
	env -u AWS_CA_BUNDLE rclone copy "$WORK/warmup" BENCH:bench/warmup
	env -u AWS_CA_BUNDLE rclone purge BENCH:bench/warmup
	rm -rf "$WORK/warmup"
fi

# s3requests: every S3 request the server has answered so far.
s3requests() {
	curl -s "http://127.0.0.1:$METRICS/metrics" | awk '/^SeaweedFS_s3_request_total\{/ { n += $NF } END { printf "%d", n }'
}

# measure SET TOOL METRIC CMD...: runs CMD, records wall seconds and peak RSS.
# Dirty pages left by the step before (a restore leaves up to 1 GiB) are
# written first, so no tool's step pays for another's writeback.
measure() {
	local set=$1 tool=$2 metric=$3
	shift 3
	sync
	if [[ $BACKENDS == s3 ]]; then REQ0=$(s3requests); fi
	if ! /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err"; then
		echo "run.sh: $tool $metric on $set failed:" >&2
		cat "$WORK/err" >&2
		exit 1
	fi
	local wall rss
	read -r wall rss <"$WORK/time"
	if [[ $BACKENDS == s3 ]]; then
		local reqs=$(($(s3requests) - REQ0))
		R[$set,$tool,req_$metric]=$reqs
	fi
	R[$set,$tool,all_$metric]="${R[$set,$tool,all_$metric]:+${R[$set,$tool,all_$metric]} }$wall"
	local best=${R[$set,$tool,$metric]:-}
	if [[ -z $best ]] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
		R[$set,$tool,$metric]=$wall
	fi
	local prev=${R[$set,$tool,rss]:-0}
	((rss > prev)) && R[$set,$tool,rss]=$rss
	printf '  %-7s %-10s %8ss  %7d MiB\n' "$tool" "$metric" "$wall" $((rss / 1024)) >&2
	return 0
}

# warm DIR: reads every file under DIR into the page cache. Every backup
# starts from a warm source: borg drops each file it reads from the page
# cache (posix_fadvise DONTNEED), which would leave the next tool to read
# the whole source from disk.
warm() { tar -cf - "$1" 2>/dev/null | cat >/dev/null; }

backup() { # SET TOOL METRIC N
	local set=$1 tool=$2 metric=$3 n=$4 repo=${REPO[$1,$2]} src=$WORK/data/$1
	local cache=${CACHE[$1,$2]}
	warm "$src"
	case $tool in
	hostd) measure "$set" hostd "$metric" "$HOSTD" backup create -r "$repo" --cache-dir "$cache" "$src" ;;
	restic) measure "$set" restic "$metric" restic -r "$repo" --cache-dir "$cache" backup -q "$src" ;;
	borg) measure "$set" borg "$metric" borg create --compression zstd,3 "$repo::s$n" "$src" ;;
	esac
}

# order REP: the tools in the order repetition REP runs them, rotated by
# one each repetition (hostd restic borg, restic borg hostd, ...).
order() {
	local n=${#TOOLS[@]} i
	for ((i = 0; i < n; i++)); do printf '%s ' "${TOOLS[(i + $1 - 1) % n]}"; done
}

restore() { # SET TOOL REP
	# Every restore goes to a new directory (see DELETIONS above).
	local set=$1 tool=$2 repo=${REPO[$1,$2]} cache=${CACHE[$1,$2]} target=$WORK/restore-$1-$2-$3
	mkdir -p "$target"
	case $tool in
	hostd) measure "$set" hostd restore "$HOSTD" backup restore -r "$repo" --cache-dir "$cache" latest --target "$target" ;;
	restic) measure "$set" restic restore restic -r "$repo" --cache-dir "$cache" restore latest --target "$target" -q ;;
	borg) measure "$set" borg restore sh -c 'cd "$1" && borg extract "$2::$3"' sh "$target" "$repo" "$(borg list --last 1 --short "$repo")" ;;
	esac
}

for set in $SETS; do
	echo "== $set" >&2
	rm -rf "$WORK/data/$set"
	mkdir -p "$WORK/data"
	case $set in
	goroot) cp -a "$(go env GOROOT)" "$WORK/data/goroot" ;;
	gen) "$WORK/gendata" -out "$WORK/data/gen" -size "$SIZE" -dup 0.3 ;;
	*) echo "run.sh: unknown set $set" >&2; exit 2 ;;
	esac
	R[$set,files]=$(find "$WORK/data/$set" -type f | wc -l)
	R[$set,bytes]=$(du -sb "$WORK/data/$set" | cut -f1)
	initrepo() { # SET TOOL REP: a fresh, empty repository and cache
		REPO[$1,$2]=$WORK/repo-$1-$2-$3 CACHE[$1,$2]=$WORK/cache-$1-$2-$3
		if [[ $BACKENDS == s3 ]]; then REPO[$1,$2]=s3:$S3/bench/$1-$2-$3; fi
		case $2 in
		hostd) "$HOSTD" backup init -r "${REPO[$1,$2]}" >/dev/null ;;
		restic) restic init -r "${REPO[$1,$2]}" >/dev/null 2>&1 ;;
		borg) rm -rf "$BORG_BASE_DIR"; borg init -e repokey-blake2 "${REPO[$1,$2]}" >/dev/null 2>&1 ;;
		esac
	}
	n=0
	for rep in $(seq "$REPS"); do
		for t in $(order "$rep"); do initrepo "$set" "$t" "$rep"; backup "$set" "$t" first 1; done
	done
	for t in "${TOOLS[@]}"; do
		if [[ $BACKENDS == s3 ]]; then
			R[$set,$t,size]=$(env -u AWS_CA_BUNDLE rclone size --json "BENCH:bench/${REPO[$set,$t]##*/bench/}" | sed 's/.*"bytes":\([0-9]*\).*/\1/')
		else
			R[$set,$t,size]=$(du -sb "${REPO[$set,$t]}" | cut -f1)
		fi
	done
	for rep in $(seq "$REPS"); do
		n=$((n + 1))
		for t in $(order "$rep"); do backup "$set" "$t" unchanged "u$n"; done
	done
	for rep in $(seq "$REPS"); do
		n=$((n + 1))
		"$WORK/gendata" -out "$WORK/data/$set" -change 0.05 -seed "$rep" >&2
		for t in $(order "$rep"); do backup "$set" "$t" changed5 "c$n"; done
	done
	for rep in $(seq "$REPS"); do
		for t in $(order "$rep"); do restore "$set" "$t" "$rep"; done
		# A few large restored files go as soon as they are measured, giving
		# their page cache back (nine restores of gen would fill 9 GiB of
		# this 24 GiB machine, and later steps reclaim it); thousands of
		# small ones stay (see DELETIONS).
		if ((rep < REPS && R[$set,files] < 1000)); then
			rm -rf "$WORK"/restore-"$set"-*-"$rep"
		fi
	done
	# hostd restored exactly what is on disk now.
	if ! diff -r --no-dereference -q "$WORK/data/$set" "$WORK/restore-$set-hostd-$REPS$WORK/data/$set" >/dev/null; then
		echo "run.sh: hostd restore of $set differs from the source" >&2
		exit 1
	fi
done

# pairs "A1 A2 ..." "B1 B2 ...": the ratios A1/B1 A2/B2 ... (the runs of
# one repetition).
pairs() { awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " "); for (i = 1; i <= n; i++) printf "%s%.2f", (i > 1 ? " " : ""), (y[i] > 0 ? x[i] / y[i] : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v a="$1" 'BEGIN { printf "%.1f MiB", a / 1048576 }'; }

if [[ $BACKENDS == s3 ]]; then
	echo
	echo "hostd $(git describe --always --dirty 2>/dev/null || echo dev), $(restic version | cut -d' ' -f1-2), SeaweedFS $WEED_VERSION on loopback S3; $(nproc) cores; best of $REPS; requests of the last repetition; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| set | figure | hostd | restic | hostd/restic |"
	echo "|---|---|---|---|---|"
	for set in $SETS; do
		label="$set ($(mib "${R[$set,bytes]}"), ${R[$set,files]} files)"
		for m in first unchanged changed5 restore; do
			h=${R[$set,hostd,$m]} r=${R[$set,restic,$m]}
			echo "| $label | $m (s) | $h | $r | $(ratio "$h" "$r") |"
			label=""
			echo "| | $m, every run (s) | ${R[$set,hostd,all_$m]} | ${R[$set,restic,all_$m]} | $(pairs "${R[$set,hostd,all_$m]}" "${R[$set,restic,all_$m]}") |"
			h=${R[$set,hostd,req_$m]} r=${R[$set,restic,req_$m]}
			echo "| | $m (S3 requests) | $h | $r | $(ratio "$h" "$r") |"
		done
		h=${R[$set,hostd,size]} r=${R[$set,restic,size]}
		echo "| | repository size (after first) | $(mib "$h") | $(mib "$r") | $(ratio "$h" "$r") |"
		h=${R[$set,hostd,rss]} r=${R[$set,restic,rss]}
		echo "| | peak RSS | $((h / 1024)) MiB | $((r / 1024)) MiB | $(ratio "$h" "$r") |"
	done
	exit 0
fi

echo
echo "hostd $(git describe --always --dirty 2>/dev/null || echo dev), $(restic version | cut -d' ' -f1-2), $(borg --version); $(nproc) cores; best of $REPS; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| set | figure | hostd | restic | borg | hostd/restic | hostd/borg |"
echo "|---|---|---|---|---|---|---|"
for set in $SETS; do
	label="$set ($(mib "${R[$set,bytes]}"), ${R[$set,files]} files)"
	for m in first unchanged changed5 restore; do
		h=${R[$set,hostd,$m]} r=${R[$set,restic,$m]} b=${R[$set,borg,$m]}
		echo "| $label | $m (s) | $h | $r | $b | $(ratio "$h" "$r") | $(ratio "$h" "$b") |"
		label=""
	done
	h=${R[$set,hostd,size]} r=${R[$set,restic,size]} b=${R[$set,borg,size]}
	echo "| | repository size (after first) | $(mib "$h") | $(mib "$r") | $(mib "$b") | $(ratio "$h" "$r") | $(ratio "$h" "$b") |"
	h=${R[$set,hostd,rss]} r=${R[$set,restic,rss]} b=${R[$set,borg,rss]}
	echo "| | peak RSS | $((h / 1024)) MiB | $((r / 1024)) MiB | $((b / 1024)) MiB | $(ratio "$h" "$r") | $(ratio "$h" "$b") |"
done
