#!/usr/bin/env bash
# Regenerates build-support/symbol-order/{berth,berth-runtime,berth-monitor}.txt:
# the functions each binary executes on the common commands, in the order
# they first ran, which `cargo dist` hands to lld as --symbol-ordering-file
# (why: build-support/symbol_order.rs). Run it after a toolchain or
# dependency update, which renames the mangled symbols;
# `scripts/symbol-order.sh --check [DIR]` only reports how much of each list
# the dist build (or the binaries in DIR) still has.
#
# How: the dist binaries run a workload under valgrind's callgrind, which
# records every function executed. The CLI runs under it first, with
# berth-runtime and berth-monitor native; then berth-runtime and
# berth-monitor run under it through wrappers named by BERTH_RUNTIME and
# BERTH_MONITOR (what valgrind keeps the runtime from doing, and how the
# workload goes around it: step 2 below).
#
# Two runs list the same functions (berth-runtime's init: see step 2), but
# the processes' profiles are written in an order that varies, and so does
# the lists' order: the CLI's peak RSS for `run --rm` came out 4.1 MB with
# one list and 4.4 MB with another of the same functions, berth-runtime's
# 2.7 and 3.0 MB (docs/benchmarks.md, 11-24 02:00). Measure before
# committing new lists.
#
# Needs root, valgrind and the host's /bin/busybox (busybox-static).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
lists=$repo/build-support/symbol-order
bin=${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-gnu/dist
bins=(berth berth-runtime berth-monitor)

symbols() { nm "$1" | awk '{print $NF}' | sort -u; }

if [ "${1:-}" = --check ]; then
  bin=${2:-$bin}
  for b in "${bins[@]}"; do
    f=$lists/$b.txt
    if [ ! -f "$f" ]; then echo "$b: no list ($f)"; continue; fi
    found=$(symbols "$bin/$b" | comm -12 - <(sort -u "$f") | wc -l)
    echo "$b: $found of $(wc -l <"$f") listed functions are in $bin/$b"
  done
  exit 0
fi

command -v valgrind >/dev/null || {
  echo "symbol-order.sh: valgrind not found; install it (apt-get install valgrind) and retry" >&2
  exit 1
}
cargo dist

work=$(mktemp -d /tmp/berth-symbol-order.XXXXXX)
export BERTH_ROOT=$work/root BERTH_RUNROOT=$work/run
berth=$bin/berth
cleanup() {
  unset BERTH_MONITOR BERTH_CLI
  ids=$("$berth" ps -aq 2>/dev/null || true)
  [ -z "$ids" ] || "$berth" rm -f $ids >/dev/null 2>&1 || true
  "$berth" network reset >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{wrap,cg-berth,cg-berth-runtime,cg-berth-monitor,vg}

# wrap NAME: a program that runs $bin/NAME under callgrind, its profiles
# in $work/cg-NAME and valgrind's own messages in $work/vg. The file names
# carry the start time too: every container's init is pid 1.
wrap() {
  cat >"$work/wrap/$1" <<EOF
#!/bin/sh
SYMBOL_ORDER_RUN=\$(date +%s%N) exec valgrind --tool=callgrind --demangle=no --trace-children=no \\
  --callgrind-out-file=$work/cg-$1/cg.%p.%q{SYMBOL_ORDER_RUN} \\
  --log-file=$work/vg/$1.%p.%q{SYMBOL_ORDER_RUN} "$bin/$1" "\$@"
EOF
  chmod +x "$work/wrap/$1"
}
for b in "${bins[@]}"; do wrap "$b"; done

. scripts/lib/busybox-tar.sh
busybox_tar "$work"
"$berth" import "$work/busybox.tar" busybox >/dev/null

# 1. The CLI, the most common commands first (the list keeps first-run
#    order, so `run --rm` gets the front of the text). BERTH_CLI is the
#    exit command the monitor calls back into.
cli=$work/wrap/berth
export BERTH_CLI=$cli
for _ in 1 2; do "$cli" run --rm --network none busybox true; done
id=$("$cli" run -d --network none busybox sleep 600)
"$cli" ps >/dev/null
"$cli" ps -a >/dev/null
"$cli" exec "$id" true
"$cli" logs "$id" >/dev/null
"$cli" inspect "$id" >/dev/null
"$cli" stop -t 1 "$id" >/dev/null
"$cli" start "$id" >/dev/null
"$cli" rm -f "$id" >/dev/null
"$cli" create --name symbol-order --network none busybox true >/dev/null
"$cli" start -a symbol-order
"$cli" rm symbol-order >/dev/null
"$cli" run --rm busybox true
"$cli" images >/dev/null
unset BERTH_CLI

# 2. The runtime and the monitor. Under valgrind the container's init
#    does not get to run the container's program (its exec fails there, and
#    valgrind does not implement seccomp(2)), so the init's profile comes
#    from a run that stops at the filter, written into a volume because the
#    init sees only the container's mounts; the runtime's success path for
#    create and start from a container that dies at once; exec, kill and
#    delete from a container that the runtime started natively.
export BERTH_MONITOR=$work/wrap/berth-monitor
runtime=$work/wrap/berth-runtime
# Three times: the runtime kills the init once it reports the failure,
# which may cut the init's profile short.
for _ in 1 2 3; do
  if BERTH_RUNTIME=$runtime "$berth" run --rm --network none \
    -v "$work/cg-berth-runtime:$work/cg-berth-runtime" busybox true 2>/dev/null; then
    echo "symbol-order.sh: the seccomp run was expected to fail under valgrind" >&2
  fi
done
id=$(BERTH_RUNTIME=$runtime "$berth" run -d --network none --security-opt seccomp=unconfined \
  busybox sleep 600)
BERTH_RUNTIME=$runtime "$berth" rm -f "$id" >/dev/null
id=$("$berth" run -d --network none busybox sleep 600)
BERTH_RUNTIME=$runtime "$berth" exec "$id" true 2>/dev/null || true
BERTH_RUNTIME=$runtime "$berth" stop -t 1 "$id" >/dev/null
BERTH_RUNTIME=$runtime "$berth" rm "$id" >/dev/null
id=$("$berth" run -d --network none busybox sleep 600)
BERTH_RUNTIME=$runtime "$berth" rm -f "$id" >/dev/null
unset BERTH_MONITOR

# Every function a profile names (callgrind's fn= and cfn= lines, with its
# name compression: "(id) name" once, "(id)" after), first-seen first, the
# files in the order written; only names the binary has (not valgrind's).
for b in "${bins[@]}"; do
  files=$(ls -tr "$work/cg-$b"/cg.*)
  # shellcheck disable=SC2086
  awk '
    FNR == 1 { delete names }
    match($0, /^c?fn=\([0-9]+\)/) {
      id = substr($0, 1, RLENGTH); sub(/^c?fn=/, "", id)
      if (length($0) > RLENGTH + 1) names[id] = substr($0, RLENGTH + 2)
      name = names[id]; sub(/'"'"'[0-9]+$/, "", name)
      if (name != "" && !(name in seen)) { seen[name] = 1; print name }
    }' $files >"$work/$b.seen"
  awk 'NR == FNR { have[$0] = 1; next } $0 in have' \
    <(symbols "$bin/$b") "$work/$b.seen" >"$lists/$b.txt"
  echo "$b: $(wc -l <"$lists/$b.txt") functions listed in $lists/$b.txt"
done
