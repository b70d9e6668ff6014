#!/bin/sh
# Layer unpack throughput: berth's LayerStore::apply against GNU `tar -x` on the
# same 5-layer, ~300 MB set of incompressible files (each layer into its own
# directory, as a layer store does).
#
#   crates/image/scripts/bench-unpack.sh [workdir]
#
# Needs root (ownership, devices) and a release build of the `unpack` example
# (built here unless UNPACK_BIN names a prebuilt one). Uses hyperfine when
# installed, else a plain timing loop (median of 5 runs after a warm-up).
# A workdir on tmpfs (e.g. /dev/shm/x) measures the unpackers themselves; on
# disk, write-back of other processes' data adds noise.
set -eu
repo=$(cd "$(dirname "$0")/../../.." && pwd)
work=${1:-$(mktemp -d /var/tmp/berth-bench-unpack.XXXXXX)}
target=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$work/src"
cd "$repo"
bin=${UNPACK_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release -p berth-image --example unpack >/dev/null
    bin="$target/release/examples/unpack"
fi

if [ ! -f "$work/layer5.tar" ]; then
    python3 - "$work" <<'PY'
import os, random, sys
work = sys.argv[1]
random.seed(42)
for layer in range(1, 6):
    src = os.path.join(work, "src", f"l{layer}")
    total = 0
    i = 0
    while total < 60 * 1024 * 1024:
        d = os.path.join(src, f"dir{i % 40}", f"sub{i % 7}")
        os.makedirs(d, exist_ok=True)
        # Mostly small files, some large ones, like real images.
        size = random.choice([512, 2048, 8192, 32768, 131072, 1048576, 4194304])
        with open(os.path.join(d, f"file{i}"), "wb") as f:
            f.write(os.urandom(size))
        total += size
        i += 1
    os.symlink("dir0/sub0/file0", os.path.join(src, "link"))
PY
    for l in 1 2 3 4 5; do
        tar -C "$work/src/l$l" -cf "$work/layer$l.tar" .
    done
    rm -rf "$work/src"
fi
du -sh "$work"/layer*.tar
tars="$work/layer1.tar $work/layer2.tar $work/layer3.tar $work/layer4.tar $work/layer5.tar"
count=$(for t in $tars; do tar -tf "$t"; done | wc -l)
echo "entries: $count"

prepare="rm -rf $work/out-tar $work/out-berth $work/out-berth-durable; sync"
tar_x="for l in 1 2 3 4 5; do mkdir -p $work/out-tar/\$l && tar -xf $work/layer\$l.tar -C $work/out-tar/\$l; done"
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs 5 --prepare "$prepare" \
        -n "tar -x" "$tar_x" \
        -n "tar -x + sync" "$tar_x; sync" \
        -n "berth apply" "$bin $work/out-berth $tars" \
        -n "berth apply (durable: syncfs)" "$bin --durable $work/out-berth-durable $tars"
else
    measure() {
        name=$1
        cmd=$2
        times=""
        for run in 0 1 2 3 4 5; do
            sh -c "$prepare"
            t0=$(date +%s%N)
            sh -c "$cmd" >/dev/null
            t1=$(date +%s%N)
            [ "$run" = 0 ] || times="$times $(( (t1 - t0) / 1000000 ))"
        done
        echo "$name: runs (ms):$times median: $(echo $times | tr ' ' '\n' | sort -n | sed -n 3p) ms"
    }
    measure "tar -x" "$tar_x"
    measure "tar -x + sync" "$tar_x; sync"
    measure "berth apply" "$bin $work/out-berth $tars"
    measure "berth apply (durable: syncfs)" "$bin --durable $work/out-berth-durable $tars"
fi
rm -rf "$work/out-tar" "$work/out-berth" "$work/out-berth-durable"
echo "inputs kept in $work (pass it as the argument to reuse them)"
