#!/usr/bin/env bash
# Benchmarks `berth load` of a ~300 MB, 5-layer docker-archive of
# incompressible data against `podman load` (one hyperfine run, clean state
# before every run) and berth's unpack throughput against `tar -x` of the
# same layer tars. Targets: berth >= 2x podman, >= 0.8x tar.
#
# Usage: scripts/bench-image-load.sh [path/to/berth]   (default: release build)
# Env:   RUNS (default 5), LAYER_MB (default 60), WORK (default: a temp dir),
#        BERTH_DURABLE=0 to skip berth's syncfs/fsync (podman and tar do not sync).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
berth=${1:-${CARGO_TARGET_DIR:-$here/target}/release/berth}
runs=${RUNS:-5}
layer_mb=${LAYER_MB:-60}
[ -x "$berth" ] || { echo "no berth binary at $berth (cargo build --release -p berth-cli)" >&2; exit 1; }
for t in hyperfine podman jq sha256sum tar; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

work=${WORK:-$(mktemp -d /var/tmp/berth-bench-XXXXXX)}
mkdir -p "$work"
image="localhost/berth-bench-$$:latest"
cleanup() {
  podman rmi -f "$image" >/dev/null 2>&1 || true
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

hyperfine --runs "$runs" --export-json "$work/result.json" \
  -n "berth load" --prepare "rm -rf $root $run; sync" "$berth load -q -i $work/image.tar" \
  -n "podman load" --prepare "podman rmi -f $image >/dev/null 2>&1 || true; sync" "podman load -q -i $work/image.tar" \
  -n "tar -x (5 layers)" --prepare "rm -rf $extract; sync" "bash -c '$untar_all'"

mean() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .mean' "$work/result.json"; }
b=$(mean "berth load"); p=$(mean "podman load"); t=$(mean "tar -x (5 layers)")
mb=$(( size / 1000000 ))
awk -v b="$b" -v p="$p" -v t="$t" -v mb="$mb" 'BEGIN {
  printf "berth load:  %.3f s (%.0f MB/s)\n", b, mb / b
  printf "podman load: %.3f s (%.0f MB/s)\n", p, mb / p
  printf "tar -x:      %.3f s (%.0f MB/s)\n", t, mb / t
  printf "berth vs podman: %.2fx faster (target >= 2x)\n", p / b
  printf "berth vs tar -x: %.2fx of tar throughput (target >= 0.8x)\n", t / b
}'
