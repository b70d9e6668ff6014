#!/usr/bin/env bash
# Benchmarks `berth load` of a ~300 MB, 5-layer docker-archive of
# incompressible data against `podman load` (one hyperfine run, clean state
# before every run) and berth's unpack throughput against `tar -x` of the
# same layer tars. Targets: berth >= 2x podman, >= 0.8x tar.
#
# Usage: scripts/bench-image-load.sh [path/to/berth]   (default: release build)
# Env:   RUNS (default 5), LAYER_MB (default 60), WORK (default: a temp dir),
#        BERTH_LAYER_SYNC=0 to skip berth's per-layer syncfs (podman and tar do not sync).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
berth=${1:-${CARGO_TARGET_DIR:-$here/target}/release/berth}
runs=${RUNS:-5}
layer_mb=${LAYER_MB:-60}
[ -x "$berth" ] || { echo "no berth binary at $berth (cargo build --release -p berth-cli)" >&2; exit 1; }
for t in sha256sum tar awk; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
# Without podman the comparison with it is skipped; without hyperfine (and
# jq) a plain timing loop with the same clean-up runs instead.
have_podman=1; command -v podman >/dev/null || { have_podman=0; echo "NOTE: podman not installed: podman comparison skipped" >&2; }
have_hyperfine=1; { command -v hyperfine >/dev/null && command -v jq >/dev/null; } || { have_hyperfine=0; echo "NOTE: hyperfine/jq not installed: using a timing loop" >&2; }

work=${WORK:-$(mktemp -d /var/tmp/berth-bench-XXXXXX)}
mkdir -p "$work"
image="localhost/berth-bench-$$:latest"
# podman gets a private store on the same filesystem as berth's root and
# tar's target, so all three write to the same kind of storage.
podman="podman --root $work/podman/root --runroot $work/podman/run --storage-driver overlay"
cleanup() {
  [ "$have_podman" = 0 ] || $podman rmi -f "$image" >/dev/null 2>&1 || true
  [ "$have_podman" = 0 ] || umount "$work/podman/root/overlay" 2>/dev/null || true
  [ -n "${WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# --- the archive: 5 layers of random files, assembled as `docker save` does.
echo "building a 5 x ${layer_mb} MB docker-archive in $work ..." >&2
ar="$work/archive"
rm -rf "$ar" && mkdir -p "$ar"
diff_ids=()
layers_json=()
for i in 1 2 3 4 5; do
  d="$work/layer$i"
  rm -rf "$d" && mkdir -p "$d/data$i"
  # A few big files and many small ones, like real images.
  for f in 1 2 3; do
    head -c $((layer_mb * 1024 * 1024 / 4)) /dev/urandom > "$d/data$i/big$f.bin"
  done
  mkdir -p "$d/data$i/small"
  head -c $((layer_mb * 1024 * 1024 / 4)) /dev/urandom | split -b 16k -a 4 - "$d/data$i/small/f"
  tar -C "$d" -cf "$work/layer$i.tar" .
  hex=$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)
  mkdir -p "$ar/$hex"
  cp "$work/layer$i.tar" "$ar/$hex/layer.tar"
  diff_ids+=("\"sha256:$hex\"")
  layers_json+=("\"$hex/layer.tar\"")
  rm -rf "$d"
done
join() { local IFS=,; echo "$*"; }
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:00Z\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(join "${diff_ids[@]}")]},\"history\":[{\"created_by\":\"bench\"},{\"created_by\":\"bench\"},{\"created_by\":\"bench\"},{\"created_by\":\"bench\"},{\"created_by\":\"bench\"}]}"
config_hex=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
printf '%s' "$config" > "$ar/$config_hex.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]' "$config_hex" "$image" "$(join "${layers_json[@]}")" > "$ar/manifest.json"
tar -C "$ar" -cf "$work/image.tar" .
rm -rf "$ar"
size=$(stat -c %s "$work/image.tar")
echo "archive: $work/image.tar, $((size / 1000000)) MB" >&2

root="$work/berth-root"
run="$work/berth-run"
export BERTH_ROOT="$root" BERTH_RUNROOT="$run"
extract="$work/tar-x"
untar_all="for i in 1 2 3 4 5; do mkdir -p $extract/\$i && tar -C $extract/\$i -xf $work/layer\$i.tar; done"

# Warm the page cache so every contender reads from memory.
cat "$work/image.tar" "$work"/layer*.tar > /dev/null

berth_cmd="$berth load -q -i $work/image.tar"
podman_cmd="$podman load -q -i $work/image.tar"
berth_prep="rm -rf $root $run; sync"
podman_prep="$podman rmi -f $image >/dev/null 2>&1 || true; sync"
tar_prep="rm -rf $extract; sync"
if [ "$have_hyperfine" = 1 ]; then
  args=(-n "berth load" --prepare "$berth_prep" "$berth_cmd")
  [ "$have_podman" = 0 ] || args+=(-n "podman load" --prepare "$podman_prep" "$podman_cmd")
  args+=(-n "tar -x (5 layers)" --prepare "$tar_prep" "bash -c '$untar_all'")
  hyperfine --runs "$runs" --export-json "$work/result.json" "${args[@]}"
  mean() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .mean' "$work/result.json"; }
  b=$(mean "berth load"); t=$(mean "tar -x (5 layers)")
  p=$([ "$have_podman" = 0 ] && echo 0 || mean "podman load")
else
  loop() { # prepare command -> mean seconds
    local total=0 s e
    for _ in $(seq "$runs"); do
      bash -c "$1"; s=$(date +%s.%N); bash -c "$2" >/dev/null; e=$(date +%s.%N)
      total=$(awk -v t="$total" -v s="$s" -v e="$e" 'BEGIN { print t + e - s }')
    done
    awk -v t="$total" -v n="$runs" 'BEGIN { print t / n }'
  }
  b=$(loop "$berth_prep" "$berth_cmd"); t=$(loop "$tar_prep" "$untar_all")
  p=$([ "$have_podman" = 0 ] && echo 0 || loop "$podman_prep" "$podman_cmd")
fi
mb=$(( size / 1000000 ))
awk -v b="$b" -v p="$p" -v t="$t" -v mb="$mb" 'BEGIN {
  printf "berth load:  %.3f s (%.0f MB/s)\n", b, mb / b
  if (p > 0) printf "podman load: %.3f s (%.0f MB/s)\n", p, mb / p
  printf "tar -x:      %.3f s (%.0f MB/s)\n", t, mb / t
  if (p > 0) printf "berth vs podman: %.2fx faster (target >= 2x)\n", p / b
  printf "berth vs tar -x: %.2fx of tar throughput (target >= 0.8x)\n", t / b
}'
