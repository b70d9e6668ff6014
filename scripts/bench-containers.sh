#!/usr/bin/env bash
# Container lifecycle benchmarks, berth side by side with podman (issue 4):
#  1. `run --rm busybox true`         vs `podman run --rm --network none`   (target: >= 10x faster)
#  2. `run -d … sleep` + `rm -f` cycle vs podman's                          (target: >= 10x faster)
#  3. 50 detached containers started in sequence                            (target: <= 0.15x podman's time)
#  4. monitor RSS/PSS of a sleeping container vs conmon's                    (target: <= 0.5x)
#  5. peak RSS of the CLI for `run --rm` vs podman's                         (target: <= 0.2x)
# hyperfine runs both commands of a pair in one invocation and the ratios
# are printed at the end. podman uses its default runtime here (runc, see
# ../shared/peers/setup-peers.sh) and its own private storage.
#
# Usage: scripts/bench-containers.sh [dir with berth, berth-monitor, berth-runtime, berth-init]
#        (default: the shipped build, target/x86_64-unknown-linux-gnu/dist, made by `cargo dist`)
# Env:   RUNS (hyperfine runs, default 20), N (containers for 3., default 50)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$here/target}/x86_64-unknown-linux-gnu/dist}
runs=${RUNS:-20}
n=${N:-50}
for b in berth berth-monitor berth-runtime berth-init; do
  [ -x "$bin/$b" ] || { echo "no $b in $bin (build it with: cargo dist)" >&2; exit 1; }
done
for t in hyperfine jq podman conmon /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: run ../shared/peers/setup-peers.sh" >&2; exit 1; }
done
[ -x "$here/../shared/peers/setup-peers.sh" ] && "$here/../shared/peers/setup-peers.sh" >/dev/null
# Whether the binaries have their functions laid out for these commands
# (build-support/symbol_order.rs); a stale list shows here as fewer found.
"$here/scripts/symbol-order.sh" --check "$bin" | sed 's/^/symbol order: /'

# Persistent state under /var/tmp, volatile state under /run, for both
# tools, as in their default configurations. (/run is a tmpfs on most
# hosts; on the dev VM and CI it is the root ext4, mounted `discard`.)
work=$(mktemp -d /var/tmp/berth-bench-ctr-XXXXXX)
runwork=$(mktemp -d /run/berth-bench-ctr-XXXXXX)
# Each tool's state in its own ext4 block groups, and not in those of an
# earlier run's: a directory with the "top" flag has its subdirectories
# spread over the groups like those of the root (Orlov, by a hash of the
# name, hence the random names), instead of next to their parent. So one
# tool's deletions, and the last run's cleanup, are not in the other's
# inode allocator's way (see settle below); each section still has its own
# tool's.
chattr +T "$work" "$runwork" 2>/dev/null || true
bstate=$(mktemp -d "$work/berth.XXXXXX") brun=$(mktemp -d "$runwork/berth.XXXXXX")
pstate=$(mktemp -d "$work/podman.XXXXXX") prun=$(mktemp -d "$runwork/podman.XXXXXX")
export BERTH_ROOT=$bstate/root BERTH_RUNROOT=$brun/berth
berth="$bin/berth"
podman="podman --root $pstate/root --runroot $prun/podman --storage-driver overlay"
cleanup() {
  "$berth" rm -f $("$berth" ps -aq) >/dev/null 2>&1 || true
  # The default bridge and berth's nftables table of this private root.
  "$berth" network reset >/dev/null 2>&1 || true
  $podman rm -af >/dev/null 2>&1 || true
  $podman rmi -af >/dev/null 2>&1 || true
  umount "$pstate/root/overlay" 2>/dev/null || true
  rm -rf "$work" "$runwork"
}
trap cleanup EXIT

# The same busybox rootfs for both.
. "$here/scripts/lib/busybox-tar.sh"
busybox_tar "$work"
"$berth" import "$work/busybox.tar" bench/busybox >/dev/null
$podman import "$work/busybox.tar" localhost/bench/busybox >/dev/null

json=$work/hf.json
ratio() { # mean(b)/mean(a) of a two-command hyperfine export
  jq -r '.results | "\(.[0].mean*1000|floor) ms vs \(.[1].mean*1000|floor) ms: berth is \((.[1].mean/.[0].mean*10|floor)/10)x faster"' "$json"
}

# Before each timed section: the setup's and the previous section's file
# churn settled, as far as it can be. On an ext4 without a journal (the dev
# VM's and CI's root) the inode allocator steps over every inode of the
# group freed in the last 60 s, or in the last 360 s while its inode-table
# block is dirty (Linux's RECENTCY_MIN and RECENTCY_DIRTY; older kernels had 5 s):
# after a few thousand deletions (a podman `rm`, the setup above) every file
# creation costs 0.1-0.4 ms more, for whichever tool runs then. `sync`
# writes those blocks back, which takes the deletions older than a minute
# out of the window, until the next creations dirty the blocks again and
# bring the last six minutes' back. Waiting that out would add 25 minutes
# per run, so each section still sees some of its own tool's earlier
# sections' deletions (the other tool's and earlier runs' are kept apart,
# above; docs/benchmarks.md, 11-24 02:00).
settle() { sync; sleep 6; }

echo "== 1. run --rm true"
settle
hyperfine -N --warmup 3 --runs "$runs" --export-json "$json" \
  -n berth "$berth run --rm --network none bench/busybox true" \
  -n podman "$podman run --rm --network none localhost/bench/busybox true"
r1=$(ratio)

echo "== 2. run -d sleep + rm -f"
settle
hyperfine --warmup 2 --runs "$runs" --export-json "$json" \
  -n berth "$berth rm -f \$($berth run -d --network none bench/busybox sleep 1000)" \
  -n podman "$podman rm -f -t 0 \$($podman run -d --network none localhost/bench/busybox sleep 1000)"
r2=$(ratio)

echo "== 3. $n detached containers in sequence"
start_n() { # $1: command prefix; starts n containers one after another
  local t0 t1 i
  t0=$(date +%s%N)
  for i in $(seq 1 "$n"); do $1 >/dev/null; done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
settle
tb=$(start_n "$berth run -d --network none bench/busybox sleep 1000")
settle
tp=$(start_n "$podman run -d --network none localhost/bench/busybox sleep 1000")
r3="berth $tb ms vs podman $tp ms: berth takes $(awk "BEGIN{printf \"%.3f\", $tb/$tp}")x podman's time"
echo "$r3"

echo "== 4. monitor vs conmon memory (one sleeping container each)"
mem() { # pid -> "RSS PSS" in kB
  awk '/^Rss:/{r=$2} /^Pss:/{p=$2} END{print r, p}' "/proc/$1/smaps_rollup"
}
# (sed, not head: with pipefail a writer killed by SIGPIPE fails the script)
bid=$("$berth" ps -q --no-trunc | sed -n 1p)
bmon=$(cat "$BERTH_RUNROOT/containers/$bid/monitor.pid")
pid=$($podman ps -q --no-trunc | sed -n 1p)
pmon=$(pgrep -f "conmon.*-c $pid" | sed -n 1p)
sleep 2 # both settle (berth's monitor trims its pages after a quiet second)
read -r brss bpss < <(mem "$bmon")
read -r prss ppss < <(mem "$pmon")
r4="berth-monitor RSS $brss kB / PSS $bpss kB vs conmon RSS $prss kB / PSS $ppss kB: $(awk "BEGIN{printf \"%.2f\", $brss/$prss}")x RSS, $(awk "BEGIN{printf \"%.2f\", $bpss/$ppss}")x PSS"
echo "$r4"
"$berth" rm -f $("$berth" ps -aq) >/dev/null
$podman rm -af -t 0 >/dev/null

echo "== 5. peak RSS of the CLI (run --rm true)"
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
bpk=$(for i in 1 2 3; do peak "$berth" run --rm --network none bench/busybox true; done | sort -n | tail -1)
ppk=$(for i in 1 2 3; do peak $podman run --rm --network none localhost/bench/busybox true; done | sort -n | tail -1)
r5="berth $bpk kB vs podman $ppk kB: $(awk "BEGIN{printf \"%.2f\", $bpk/$ppk}")x"
echo "$r5"

echo
echo "summary ($(nproc) CPUs, $(uname -r)):"
echo "  1. run --rm:         $r1"
echo "  2. run -d + rm -f:   $r2"
echo "  3. $n x run -d:      $r3"
echo "  4. monitor memory:   $r4"
echo "  5. CLI peak RSS:     $r5"
