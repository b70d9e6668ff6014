#!/usr/bin/env bash
# Benchmarks registry transfers of a ~300 MB, 5-layer image of incompressible
# data against a local docker-registry (plain HTTP on 127.0.0.1), one
# hyperfine run per direction, clean state before every run:
#
#   pull into empty storage: berth pull  vs  podman pull --tls-verify=false
#                            vs  skopeo copy docker:// → dir: (no unpack)
#   push to an empty registry: berth push  vs  podman push  vs  skopeo copy
#                            docker-archive: → docker:// (each from its own
#                            store, the registry's storage wiped before each run)
#
# The pulled image is gzip-compressed (skopeo seeds the registry, as `docker
# push` would). On push all three gzip the layers: podman and skopeo with
# pgzip/compress/gzip at their default level, berth at the fast level with
# chunks that look incompressible written as stored blocks (gzip.rs).
# MB/s is the image's compressed size in the registry over wall time.
# Targets: berth pull >= 1.5x podman's throughput, push >= podman's.
#
# Usage: scripts/bench-registry.sh [path/to/berth]   (default: dist build)
# Env:   RUNS (default 3), LAYER_MB (default 60), SMALL_FILES=0 for big files
#        only (default: a quarter of each layer in 16 KiB files, as
#        bench-image-load.sh), WORK (default: a temp dir under /var/tmp),
#        BERTH_LAYER_SYNC=0 to skip berth's per-layer syncfs,
#        PULL_CLEAN=move to move each pull's previous store aside (removed
#        at the end) instead of deleting it right before the run: on ext4
#        without a journal (the dev VM's /var/tmp) new inodes skip every
#        inode freed in the last minute one by one, so a pull right after
#        deleting 5,000 files pays seconds of system time for the delete
#        (see docs/benchmarks.md),
#        HYPERFINE_OPTS (e.g. --show-output to see a failing command).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
berth=${1:-$target/x86_64-unknown-linux-gnu/dist/berth}
runs=${RUNS:-3}
layer_mb=${LAYER_MB:-60}
small=${SMALL_FILES:-1}
[ -x "$berth" ] || { echo "no berth binary at $berth (cargo dist)" >&2; exit 1; }
for t in podman skopeo hyperfine jq docker-registry sha256sum tar; do
  command -v "$t" >/dev/null || { echo "missing $t (run /work/shared/peers/setup-peers.sh)" >&2; exit 1; }
done

work=${WORK:-$(mktemp -d /var/tmp/berth-bench-registry-XXXXXX)}
mkdir -p "$work"
podman="podman --root $work/podman/root --runroot $work/podman/run --storage-driver overlay"
pids=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() { # name -> sets $reg_host, storage under $work/<name>
  local name=$1 port
  port=$(free_port)
  mkdir -p "$work/$name"
  cat > "$work/$name.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/$name
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  docker-registry serve "$work/$name.yml" > "$work/$name.log" 2>&1 &
  pids+=($!)
  reg_host=127.0.0.1:$port
  for _ in $(seq 100); do curl -sf "http://$reg_host/v2/" >/dev/null && return; sleep 0.1; done
  echo "registry $name did not start: $(cat "$work/$name.log")" >&2; exit 1
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  $podman rmi -a -f >/dev/null 2>&1 || true
  umount "$work/podman/root/overlay" 2>/dev/null || true
  rm -rf "$work/old"
  [ -n "${WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# --- the image: 5 layers of random files, as a docker-archive.
echo "building a 5 x ${layer_mb} MB image in $work ..." >&2
ar="$work/archive"; rm -rf "$ar"; mkdir -p "$ar"
diff_ids=(); layers_json=()
for i in 1 2 3 4 5; do
  d="$work/layer$i"; rm -rf "$d"; mkdir -p "$d/data$i"
  if [ "$small" = 0 ]; then
    for f in 1 2 3 4; do head -c $((layer_mb * 1024 * 1024 / 4)) /dev/urandom > "$d/data$i/big$f.bin"; done
  else
    for f in 1 2 3; do head -c $((layer_mb * 1024 * 1024 / 4)) /dev/urandom > "$d/data$i/big$f.bin"; done
    mkdir -p "$d/data$i/small"
    head -c $((layer_mb * 1024 * 1024 / 4)) /dev/urandom | split -b 16k -a 4 - "$d/data$i/small/f"
  fi
  tar -C "$d" -cf "$work/layer$i.tar" .
  hex=$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)
  mkdir -p "$ar/$hex"; mv "$work/layer$i.tar" "$ar/$hex/layer.tar"
  diff_ids+=("\"sha256:$hex\""); layers_json+=("\"$hex/layer.tar\"")
  rm -rf "$d"
done
join() { local IFS=,; echo "$*"; }
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:00Z\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(join "${diff_ids[@]}")]},\"history\":[{\"created_by\":\"bench\"},{\"created_by\":\"bench\"},{\"created_by\":\"bench\"},{\"created_by\":\"bench\"},{\"created_by\":\"bench\"}]}"
config_hex=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
printf '%s' "$config" > "$ar/$config_hex.json"
printf '[{"Config":"%s.json","RepoTags":["localhost/bench:latest"],"Layers":[%s]}]' "$config_hex" "$(join "${layers_json[@]}")" > "$ar/manifest.json"
tar -C "$ar" -cf "$work/image.tar" .
rm -rf "$ar"

start_registry pullreg; pull_host=$reg_host
start_registry pushreg; push_host=$reg_host
echo "seeding $pull_host/bench:latest with skopeo (gzip layers) ..." >&2
skopeo copy -q --dest-tls-verify=false "docker-archive:$work/image.tar" "docker://$pull_host/bench:latest"
mb=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json' \
  "http://$pull_host/v2/bench/manifests/latest" | jq '[.layers[].size] | add / 1000000 | floor')
echo "image in the registry: $mb MB compressed" >&2

src="$pull_host/bench:latest"
broot="$work/berth-root"; brun="$work/berth-run"
export BERTH_ROOT="$broot" BERTH_RUNROOT="$brun"
# berth reads no system registry settings or credentials here.
# podman and skopeo read DOCKER_CONFIG too and fail on a missing file.
export BERTH_CONFIG="$work/none.toml" DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG"; echo '{}' > "$DOCKER_CONFIG/config.json"
clean_berth="rm -rf $broot $brun; sync"
clean_podman="$podman rmi -a -f >/dev/null 2>&1 || true; sync"
clean_skopeo="rm -rf $work/skopeo-dir; sync"
if [ "${PULL_CLEAN:-rm}" = move ]; then
  # \$\$: the prepare shell's pid, a fresh directory per run.
  aside="mkdir -p $work/old/\$\$ && mv -t $work/old/\$\$"
  clean_berth="$aside $broot $brun 2>/dev/null; sync"
  clean_podman="umount $work/podman/root/overlay 2>/dev/null; $aside $work/podman 2>/dev/null; sync"
  clean_skopeo="$aside $work/skopeo-dir 2>/dev/null; sync"
fi
hyperfine ${HYPERFINE_OPTS:-} --runs "$runs" --export-json "$work/pull.json" \
  -n "berth pull" --prepare "$clean_berth" "$berth pull -q $src" \
  -n "podman pull" --prepare "$clean_podman" "$podman pull -q --tls-verify=false $src" \
  -n "skopeo copy (to dir:)" --prepare "$clean_skopeo" "skopeo copy -q --src-tls-verify=false docker://$src dir:$work/skopeo-dir"

# Push sources: each tool's own store holding the image from the archive
# (berth: loaded, so it knows no registry blob for the layers and uploads
# them; podman: loaded; skopeo: the archive itself).
$berth load -q -i "$work/image.tar" >/dev/null
$berth tag localhost/bench:latest "$push_host/berth:latest"
$podman load -q -i "$work/image.tar" >/dev/null
$podman tag localhost/bench:latest "$push_host/podman:latest"
wipe="rm -rf $work/pushreg/docker; sync"
hyperfine ${HYPERFINE_OPTS:-} --runs "$runs" --export-json "$work/push.json" \
  -n "berth push" --prepare "$wipe" "$berth push -q $push_host/berth:latest" \
  -n "podman push" --prepare "$wipe" "$podman push -q --tls-verify=false $push_host/podman:latest" \
  -n "skopeo copy (docker-archive:)" --prepare "$wipe" "skopeo copy -q --dest-tls-verify=false docker-archive:$work/image.tar docker://$push_host/skopeo:latest"

mean() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .mean' "$work/$1.json"; }
bp=$(mean pull "berth pull"); pp=$(mean pull "podman pull"); sp=$(mean pull "skopeo copy (to dir:)")
bu=$(mean push "berth push"); pu=$(mean push "podman push"); su=$(mean push "skopeo copy (docker-archive:)")
awk -v bp="$bp" -v pp="$pp" -v sp="$sp" -v bu="$bu" -v pu="$pu" -v su="$su" -v mb="$mb" 'BEGIN {
  printf "pull  berth %.2f s (%.0f MB/s)  podman %.2f s (%.0f MB/s)  skopeo %.2f s (%.0f MB/s)\n", bp, mb/bp, pp, mb/pp, sp, mb/sp
  printf "push  berth %.2f s (%.0f MB/s)  podman %.2f s (%.0f MB/s)  skopeo %.2f s (%.0f MB/s)\n", bu, mb/bu, pu, mb/pu, su, mb/su
  printf "pull: berth %.2fx podman (target >= 1.5x), %.2fx skopeo\n", pp/bp, sp/bp
  printf "push: berth %.2fx podman, %.2fx skopeo\n", pu/bu, su/bu
}'
