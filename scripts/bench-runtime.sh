#!/usr/bin/env bash
# Benchmarks `<runtime> run` of a busybox bundle whose process is /bin/true
# (create, start, wait, delete in one command) for berth-runtime, runc and
# crun in ONE hyperfine run, then prints berth/runc and berth/crun ratios and
# each runtime's peak RSS (/usr/bin/time -f %M).
#
# Targets (issue): berth <= 0.5x runc and <= 0.8x crun.
#
# Usage (root): scripts/bench-runtime.sh [--runs N] [--rounds N] [--warmup N] [--no-build] [--export FILE.json]
#   --rounds N: N hyperfine runs of --runs each, one after the other, their
#   times pooled. hyperfine times all runs of one command before the next;
#   on a machine whose load changes by the second (other builds), short
#   rounds give each runtime a share of the quiet and the busy spells
#   instead of one runtime the quiet and another the busy one.
#   BERTH_RUNTIME=/path/to/berth-runtime overrides the binary (default: the
#   static-PIE release build, ${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/berth-runtime,
#   built here with `cargo runtime-release` (.cargo/config.toml) unless --no-build).
#
# Hybrid cgroups: crun 1.8 refuses a cgroup2 mount that has controllers next
# to v1 ones. The whole benchmark therefore runs in a private mount namespace
# with /sys/fs/cgroup/unified unmounted, once, for all three runtimes: the
# same environment for each and no per-run unshare cost in the numbers.
set -euo pipefail

runs=50
rounds=1
warmup=5
build=1
export_json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --export) export_json=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench-runtime: unknown argument $1" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench-runtime: needs root (containers, cgroups, mounts)" >&2; exit 1; }
for tool in hyperfine runc crun jq /usr/bin/time /bin/busybox unshare; do
  command -v "$tool" >/dev/null || {
    echo "bench-runtime: $tool is missing (scripts/install-deps.sh installs it; /usr/bin/time is Debian's 'time')" >&2
    exit 1
  }
done

# Build before entering the namespace: cargo needs nothing from it.
berth=${BERTH_RUNTIME:-${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-gnu/release/berth-runtime}
if [ -z "${BERTH_BENCH_IN_NS:-}" ]; then
  if [ "$build" = 1 ] && [ -z "${BERTH_RUNTIME:-}" ]; then
    echo "== building berth-runtime (release, static PIE: cargo runtime-release)"
    if ! (cd "$repo" && cargo runtime-release -q); then
      echo "bench-runtime: building berth-runtime failed; continuing with runc and crun" >&2
    fi
  fi
  # Re-run this script in a private mount namespace (see the header).
  exec unshare --mount --propagation private env BERTH_BENCH_IN_NS=1 BERTH_RUNTIME="$berth" \
    bash "$0" --runs "$runs" --rounds "$rounds" --warmup "$warmup" --no-build ${export_json:+--export "$export_json"}
fi

if mountpoint -q /sys/fs/cgroup/unified; then
  umount /sys/fs/cgroup/unified
  cgroup_note="hybrid host: /sys/fs/cgroup/unified hidden for all runtimes (crun 1.8 refuses hybrid)"
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cgroup_note="cgroup v2"
else
  cgroup_note="cgroup v1"
fi

work=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
bundle=$work/bundle
# Container ids carry "berth-bench" so leftovers (cgroups, state) are easy to find.
id_prefix=berth-bench-$$

cleanup() {
  local rc=$?
  for rt in runc crun berth; do
    local bin=$rt root=$work/state-$rt
    [ "$rt" = berth ] && bin=$berth
    [ -d "$root" ] || continue
    for id in $("$bin" --root "$root" list -q 2>/dev/null || true); do
      "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  # A runtime killed mid-run can leave its v1 cgroups behind.
  find /sys/fs/cgroup -depth -type d -name "$id_prefix-*" -exec rmdir {} \; 2>/dev/null || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

# Bundle: static busybox with one symlink per applet, `runc spec` defaults,
# process /bin/true without a terminal.
. "$repo/scripts/lib/busybox-tar.sh"
busybox_rootfs "$bundle"
(cd "$bundle" && runc spec)
jq '.process.args = ["/bin/true"] | .process.terminal = false' "$bundle/config.json" > "$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

# `run` for runtime $1. hyperfine runs it without a shell (-N): a shell's
# fork+exec (~1 ms) would be timed too and pull every ratio towards 1. One
# container id per runtime is enough: `run` deletes the container (state
# dir and cgroups) before it returns.
run_cmd() {
  local name=$1 bin=$2
  echo "$bin --root $work/state-$name run --bundle $bundle $id_prefix-$name"
}

names=(runc crun)
bins=(runc crun)
if [ -x "$berth" ]; then
  mkdir -p "$work/state-berth"
  if probe=$("$berth" --root "$work/state-berth" run --bundle "$bundle" "$id_prefix-berth-probe" 2>&1 </dev/null); then
    names=(berth runc crun)
    bins=("$berth" runc crun)
  else
    echo "== berth-runtime SKIPPED: '$berth run' of the bundle failed:"
    printf '%s\n' "$probe" | tail -n 5 | sed 's/^/   /'
  fi
else
  echo "== berth-runtime SKIPPED: $berth does not exist (build failed or --no-build)"
fi
for i in "${!names[@]}"; do mkdir -p "$work/state-${names[$i]}"; done

# Each runtime must run the bundle before it is timed.
for i in "${!names[@]}"; do
  "${bins[$i]}" --root "$work/state-${names[$i]}" run --bundle "$bundle" "$id_prefix-${names[$i]}-check" </dev/null ||
    { echo "bench-runtime: ${names[$i]} cannot run the bundle" >&2; exit 1; }
done

echo "== $(runc --version | head -n1); $(crun --version | head -n1); kernel $(uname -r); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $cgroup_note"
for round in $(seq "$rounds"); do
  hyperfine_args=(--shell=none --warmup "$warmup" --runs "$runs" --export-json "$work/round$round.json")
  for i in "${!names[@]}"; do
    hyperfine_args+=(--command-name "${names[$i]}" "$(run_cmd "${names[$i]}" "${bins[$i]}")")
  done
  if [ "$rounds" = 1 ]; then
    hyperfine "${hyperfine_args[@]}" </dev/null
  else
    echo "== round $round/$rounds (load $(cut -d' ' -f1 /proc/loadavg))"
    hyperfine --style none "${hyperfine_args[@]}" </dev/null >/dev/null
  fi
done
# Pool the rounds' times per runtime into hyperfine's result format.
jq -s '{results: ([.[].results[]] | group_by(.command) | map(
    ([.[].times[]] | sort) as $t
    | {command: .[0].command, mean: (($t | add) / ($t | length)),
       median: (if ($t | length) % 2 == 1 then $t[($t | length - 1) / 2]
                else ($t[($t | length) / 2 - 1] + $t[($t | length) / 2]) / 2 end),
       min: $t[0], times: $t}))}' "$work"/round*.json > "$work/hyperfine.json"
[ -z "$export_json" ] || cp "$work/hyperfine.json" "$export_json"

# stat_ms NAME FIELD: hyperfine's mean/median/min for one runtime, in ms.
stat_ms() { jq -r --arg n "$1" --arg f "$2" '.results[] | select(.command == $n) | .[$f] * 1000' "$work/hyperfine.json"; }
mean_ms() { stat_ms "$1" mean; }

# Peak RSS: GNU time's %M is the largest maximum resident set size among the
# runtime and the children it waited for (runc's `runc init`, crun's
# container process); median of 5 runs.
peak_rss_kib() {
  local name=$1 bin=$2 samples=()
  for n in 1 2 3 4 5; do
    samples+=("$(/usr/bin/time -f %M "$bin" --root "$work/state-$name" run --bundle "$bundle" \
      "$id_prefix-$name-rss$n" 2>&1 >/dev/null </dev/null | tail -n1)")
  done
  printf '%s\n' "${samples[@]}" | sort -n | sed -n 3p
}

echo
echo "== results ($((runs * rounds)) runs each; min is the least load-sensitive on a busy machine)"
printf '%-8s %9s %11s %8s %14s\n' runtime "mean ms" "median ms" "min ms" "peak RSS KiB"
for i in "${!names[@]}"; do
  n=${names[$i]}
  printf '%-8s %9.2f %11.2f %8.2f %14s\n' "$n" "$(mean_ms "$n")" "$(stat_ms "$n" median)" "$(stat_ms "$n" min)" \
    "$(peak_rss_kib "$n" "${bins[$i]}")"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
runc_ms=$(mean_ms runc)
crun_ms=$(mean_ms crun)
echo "crun/runc  = $(ratio "$crun_ms" "$runc_ms")"
if [ "${names[0]}" = berth ]; then
  berth_ms=$(mean_ms berth)
  echo "berth/runc = $(ratio "$berth_ms" "$runc_ms")   (target <= 0.50)"
  echo "berth/crun = $(ratio "$berth_ms" "$crun_ms")   (target <= 0.80)"
  echo "medians: berth/runc = $(ratio "$(stat_ms berth median)" "$(stat_ms runc median)"), berth/crun = $(ratio "$(stat_ms berth median)" "$(stat_ms crun median)")"
else
  echo "berth/runc, berth/crun: not measured (berth-runtime skipped, see above)"
fi
