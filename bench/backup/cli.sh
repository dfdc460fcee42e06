#!/usr/bin/env bash
# Benchmarks the browsing and import commands of `hostd backup` against
# restic 0.14 (Debian's), side by side in one run, on the same data:
# BENCH_SNAPSHOTS (default 50) snapshots of a copy of
# $(go env GOROOT)/src, a few files changed between snapshots, backed up
# by both tools.
#   find    `hostd backup find NAME` vs `restic find NAME` over every
#           snapshot (NAME: BENCH_FIND_NAME, default print.go)
#   mount   a fresh `hostd backup mount` vs `restic mount`, then
#           `tar cf - -C MNT/snapshots/latest/SRC . | wc -c` (tar must
#           read the contents: `tar cf /dev/null` does not)
#   import  `hostd backup import restic:RESTIC_REPO` into a new hostd
#           repository vs `restic restore` of every snapshot of it (each
#           into its own directory), and the sizes of the repositories
# The machine is shared, so each step runs several times with the tools
# interleaved (BENCH_REPS, default 5; the import step BENCH_IMPORT_REPS,
# default 2, as restic writes every snapshot's files: about 7.6 GiB for 50),
# each timed step starts after `sync`, and the table gives min and
# median per tool, the ratio of the medians, and the spread of the
# ratios of each interleaved pair (hostd's time over restic's in the
# same repetition).
#
# Environment: BENCH_DIR (work dir, default a new dir under /var/tmp,
# removed at the end unless BENCH_KEEP=1), BENCH_SNAPSHOTS, BENCH_REPS,
# BENCH_IMPORT_REPS, BENCH_FIND_NAME, BENCH_STEPS (default
# "find mount import").
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in restic tar go fusermount3; do
	command -v "$tool" >/dev/null || { echo "cli.sh: $tool is missing (scripts/install-test-deps.sh installs it)" >&2; exit 1; }
done

WORK=${BENCH_DIR:-$(mktemp -d /var/tmp/hostd-bench-cli.XXXXXX)}
NSNAP=${BENCH_SNAPSHOTS:-50}
REPS=${BENCH_REPS:-5}
IREPS=${BENCH_IMPORT_REPS:-2}
NAME=${BENCH_FIND_NAME:-print.go}
STEPS=${BENCH_STEPS:-find mount import}
mkdir -p "$WORK"
MOUNT_PID=
cleanup() {
	if [[ -n $MOUNT_PID ]]; then
		kill -INT "$MOUNT_PID" 2>/dev/null || true
		wait "$MOUNT_PID" 2>/dev/null || true
	fi
	for m in "$WORK"/mnt-*; do
		[[ -d $m ]] && { fusermount3 -u "$m" 2>/dev/null || true; }
	done
	if [[ ${BENCH_KEEP:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

export HOSTD_BACKUP_PASSWORD=bench RESTIC_PASSWORD=bench
HOSTD=$WORK/hostd
# Built as the Makefile builds it: static, without cgo.
CGO_ENABLED=0 go build -trimpath -o "$HOSTD" ./cmd/hostd
H() { "$HOSTD" backup --cache-dir "$WORK/hcache" "$@"; }
R() { restic --cache-dir "$WORK/rcache" "$@"; }

# The data: a copy of the Go tree's src, changed a little before each
# snapshot after the first (5 files get a line appended), backed up by
# both tools at each state.
SRC=$WORK/src
cp -a "$(go env GOROOT)/src" "$SRC"
mapfile -t FILES < <(cd "$SRC" && find . -type f -name '*.go' | LC_ALL=C sort)
HREPO=$WORK/hostd-repo RREPO=$WORK/restic-repo
H init -r "$HREPO" >/dev/null
R init -r "$RREPO" -q
echo "cli.sh: $NSNAP snapshots of $SRC ($(du -sh "$SRC" | cut -f1), ${#FILES[@]} .go files) by both tools" >&2
for ((i = 1; i <= NSNAP; i++)); do
	if ((i > 1)); then
		for k in 1 2 3 4 5; do
			echo "// cli.sh: snapshot $i" >>"$SRC/${FILES[(i * 7919 + k * 104729) % ${#FILES[@]}]}"
		done
	fi
	H create -r "$HREPO" "$SRC" >/dev/null
	R backup -r "$RREPO" -q "$SRC"
done

declare -A T # T[step,tool]: the times, space-separated, in run order

# timed STEP TOOL CMD...: runs CMD after sync, appends its wall time.
timed() {
	local step=$1 tool=$2
	shift 2
	sync
	local s e
	s=$(date +%s.%N)
	"$@"
	e=$(date +%s.%N)
	local t
	t=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }')
	T[$step,$tool]+="$t "
	printf '  %-7s %-7s %8ss\n' "$step" "$tool" "$t" >&2
}

# find: every snapshot, one name.
if [[ " $STEPS " == *" find "* ]]; then
	hn=$(H find -r "$HREPO" "$NAME" | grep -c "$NAME\$" || true)
	rn=$(R find -r "$RREPO" "$NAME" 2>/dev/null | grep -c "$NAME\$" || true)
	echo "cli.sh: find $NAME: hostd lists $hn paths, restic $rn" >&2
	[[ $hn == "$rn" && $hn -gt 0 ]] || { echo "cli.sh: find results differ" >&2; exit 1; }
	hfind() { H find -r "$HREPO" "$NAME" >/dev/null; }
	rfind() { R find -r "$RREPO" "$NAME" >/dev/null 2>&1; }
	for ((r = 1; r <= REPS; r++)); do
		timed find hostd hfind
		timed find restic rfind
	done
fi

# mount: a fresh mount each time (nothing in the kernel's caches), the
# newest snapshot's tree read through it.
readmnt() { # MOUNTPOINT
	local n
	n=$(tar cf - -C "$1/snapshots/latest$SRC" . | wc -c)
	[[ $n == "$WANT" ]] || { echo "cli.sh: read $n bytes through $1, want $WANT" >&2; exit 1; }
}
mountread() { # TOOL
	local mp=$WORK/mnt-$1
	mkdir -p "$mp"
	# The binaries themselves, not H or R: a shell function run in the
	# background is a subshell, which ignores SIGINT.
	if [[ $1 == hostd ]]; then
		"$HOSTD" backup --cache-dir "$WORK/hcache" mount -r "$HREPO" "$mp" >/dev/null 2>"$WORK/mount-$1.log" &
	else
		restic --cache-dir "$WORK/rcache" mount -r "$RREPO" "$mp" >/dev/null 2>"$WORK/mount-$1.log" &
	fi
	MOUNT_PID=$!
	for ((w = 0; w < 300; w++)); do
		[[ -e $mp/snapshots/latest ]] && break
		sleep 0.1
	done
	timed mount "$1" readmnt "$mp"
	kill -INT "$MOUNT_PID"
	wait "$MOUNT_PID" || true
	MOUNT_PID=
}
if [[ " $STEPS " == *" mount "* ]]; then
	WANT=$(tar cf - -C "$SRC" . | wc -c)
	for ((r = 1; r <= REPS; r++)); do
		mountread hostd
		mountread restic
	done
fi

# import: the restic repository into a new hostd repository, against
# restic restoring every snapshot of it. Nothing is deleted before the
# run ends (see run.sh: deleting many files slows the next restore).
restoreall() { # TARGET
	local id
	for id in $(R snapshots -r "$RREPO" -q --json | grep -o '"short_id":"[0-9a-f]*"' | cut -d'"' -f4); do
		R restore -r "$RREPO" -q "$id" --target "$1/$id"
	done
}
ISIZE=
if [[ " $STEPS " == *" import "* ]]; then
	for ((r = 1; r <= IREPS; r++)); do
		H init -r "$WORK/import-$r" >/dev/null
		timed import hostd H import -r "$WORK/import-$r" "restic:$RREPO" >/dev/null
		timed import restic restoreall "$WORK/restore-$r"
	done
	H check -r "$WORK/import-1" >/dev/null
	n=$(H snapshots -r "$WORK/import-1" --json | grep -o '"short_id"' | wc -l)
	[[ $n == "$NSNAP" ]] || { echo "cli.sh: import wrote $n snapshots, want $NSNAP" >&2; exit 1; }
	ISIZE=$(du -sb "$WORK/import-1" | cut -f1)
fi

stats() { # TIMES... -> "min median"
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f\n", v[1], m }'
}
pairs() { # "HOSTD TIMES" "RESTIC TIMES" -> "min-max of the ratios"
	awk -v h="$1" -v r="$2" 'BEGIN { n = split(h, a, " "); split(r, b, " "); lo = 1e9; hi = 0
		for (i = 1; i <= n; i++) { q = a[i] / b[i]; if (q < lo) lo = q; if (q > hi) hi = q }
		printf "%.2f-%.2f", lo, hi }'
}
mib() { awk -v a="$1" 'BEGIN { printf "%.1f MiB", a / 1048576 }'; }

echo
echo "hostd $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- pkg cmd || echo ' (uncommitted changes)'), $(restic version | cut -d' ' -f1-2); $(nproc) cores; $NSNAP snapshots of the Go tree's src ($(du -sh "$SRC" | cut -f1)); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| figure | runs | hostd min / median (s) | restic min / median (s) | hostd/restic (medians) | per-run ratios |"
echo "|---|---|---|---|---|---|"
declare -A WHAT=([find]="find $NAME, $NSNAP snapshots" [mount]="mount + tar \\| wc -c of the newest" [import]="import of the restic repository / restic restore of its $NSNAP snapshots")
for step in find mount import; do
	[[ -n ${T[$step,hostd]:-} ]] || continue
	# shellcheck disable=SC2086
	read -r hmin hmed < <(stats ${T[$step,hostd]})
	# shellcheck disable=SC2086
	read -r rmin rmed < <(stats ${T[$step,restic]})
	runs=$(wc -w <<<"${T[$step,hostd]}")
	echo "| ${WHAT[$step]} | $runs | $hmin / $hmed | $rmin / $rmed | $(awk -v a="$hmed" -v b="$rmed" 'BEGIN { printf "%.2f", a / b }') | $(pairs "${T[$step,hostd]}" "${T[$step,restic]}") |"
done
echo
echo "| repository | size |"
echo "|---|---|"
echo "| restic ($NSNAP backups) | $(mib "$(du -sb "$RREPO" | cut -f1)") |"
echo "| hostd ($NSNAP backups) | $(mib "$(du -sb "$HREPO" | cut -f1)") |"
[[ -n $ISIZE ]] && echo "| hostd (import of the restic one) | $(mib "$ISIZE") |"
echo
