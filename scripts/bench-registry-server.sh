#!/usr/bin/env bash
# Benchmarks `berth registry serve` against Debian's docker-registry
# (distribution): `skopeo copy` pushes a ~300 MB, 5-layer image of
# incompressible data (gzip layers, so skopeo sends them as they are) into
# an empty registry, then pulls it back into an empty `dir:`. Same client,
# same data, same disk; one run each by default, side by side.
#
# Usage: scripts/bench-registry-server.sh [path/to/berth]   (default: release build)
# Env:   RUNS (default 1), LAYER_MB (default 60), WORK (default: a temp dir under /var/tmp)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
berth=${1:-${CARGO_TARGET_DIR:-$here/target}/release/berth}
runs=${RUNS:-1}
layer_mb=${LAYER_MB:-60}
[ -x "$berth" ] || { echo "no berth binary at $berth (cargo build --release -p berth-cli)" >&2; exit 1; }
for t in skopeo docker-registry curl python3 sha256sum gzip tar; do
  command -v "$t" >/dev/null || { echo "missing $t (scripts/install-deps.sh, /work/shared/peers/setup-peers.sh)" >&2; exit 1; }
done

work=${WORK:-$(mktemp -d /var/tmp/berth-regbench-XXXXXX)}
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -n "${WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# --- the image: an OCI layout with 5 gzip layers of random data.
src="$work/src"
rm -rf "$src" && mkdir -p "$src/blobs/sha256"
put_blob() { # file -> prints "sha256:<hex> <size>", moves the file into the layout
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1); size=$(stat -c %s "$1")
  mv "$1" "$src/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}
echo "building a 5 x ${layer_mb} MB image in $src ..." >&2
diff_ids=() layers=()
total=0
for i in 1 2 3 4 5; do
  d="$work/layer$i"; rm -rf "$d"; mkdir -p "$d"
  head -c $((layer_mb * 1024 * 1024)) /dev/urandom > "$d/data$i.bin"
  tar -C "$d" -cf "$work/layer$i.tar" .
  diff_ids+=("\"sha256:$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)\"")
  gzip -1 -n -c "$work/layer$i.tar" > "$work/layer$i.tar.gz"
  rm -rf "$d" "$work/layer$i.tar"
  read -r dg sz < <(put_blob "$work/layer$i.tar.gz")
  total=$((total + sz))
  layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$dg\",\"size\":$sz}")
done
join() { local IFS=,; echo "$*"; }
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$(join "${diff_ids[@]}")" > "$work/config.json"
read -r cdg csz < <(put_blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
  "$cdg" "$csz" "$(join "${layers[@]}")" > "$work/manifest.json"
read -r mdg msz < <(put_blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$mdg" "$msz" > "$src/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$src/oci-layout"
mb=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "image: $mb MB in 5 layers" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf "http://$1/v2/" >/dev/null && return 0; sleep 0.1; done; echo "registry at $1 did not come up" >&2; return 1; }
now() { date +%s.%N; }

start_registry() { # kind root -> sets addr, pid
  local port; port=$(free_port); addr="127.0.0.1:$port"
  case $1 in
    docker-registry)
      cat > "$work/distribution.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $2}, delete: {enabled: true}}
http: {addr: $addr}
YML
      docker-registry serve "$work/distribution.yml" >"$work/$1.log" 2>&1 & pid=$! ;;
    berth)
      "$berth" registry serve --addr "$addr" --root "$2" 2>"$work/$1.log" & pid=$! ;;
  esac
  pids+=("$pid")
  wait_up "$addr"
}

results=()
for run in $(seq "$runs"); do
  for kind in docker-registry berth; do
    root="$work/root-$kind"; rm -rf "$root" "$work/pulled"; mkdir -p "$root"
    start_registry "$kind" "$root"
    ref="docker://$addr/bench/image:latest"
    sync
    t0=$(now)
    skopeo copy -q --dest-tls-verify=false "oci:$src:latest" "$ref"
    t1=$(now)
    skopeo copy -q --src-tls-verify=false "$ref" "dir:$work/pulled"
    t2=$(now)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    push=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    pull=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')
    results+=("$run $kind $push $pull")
    echo "run $run $kind: push ${push}s pull ${pull}s" >&2
  done
done

echo
echo "skopeo copy of $mb MB (5 layers), $runs run(s), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %9s %10s %9s %10s\n' server "push s" "push MB/s" "pull s" "pull MB/s"
for kind in docker-registry berth; do
  printf '%s\n' "${results[@]}" | awk -v k="$kind" -v mb="$mb" '$2 == k { p += $3; q += $4; n++ }
    END { printf "%-16s %9.2f %10.1f %9.2f %10.1f\n", k, p/n, mb*n/p, q/n, mb*n/q }'
done
printf '%s\n' "${results[@]}" | awk '$2 == "docker-registry" { dp += $3; dq += $4 } $2 == "berth" { bp += $3; bq += $4 }
  END { printf "berth / docker-registry throughput: push %.2fx, pull %.2fx\n", dp/bp, dq/bq }'
