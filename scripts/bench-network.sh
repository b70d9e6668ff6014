#!/usr/bin/env bash
# Networking benchmarks, berth side by side with podman (issue 5):
#  1. container-to-container TCP throughput (iperf3, 5 s) over berth's
#     default bridge, over podman's default network (netavark bridge), and
#     over the host's loopback (the limit);
#  2. `berth run --rm busybox true` with the default bridge vs
#     `podman run --rm` with its default network (target: >= 10x faster),
#     and berth with --network none for the cost of the network itself.
# iperf3 runs from the host inside each container's network namespace
# (nsenter -n): the packets take the container's path (veth, bridge,
# netfilter) without needing iperf3 in the image.
#
# Usage: scripts/bench-network.sh [dir with berth, berth-monitor, berth-runtime, berth-init]
#        (default: the shipped build, target/x86_64-unknown-linux-gnu/dist, made by `cargo dist`)
# Env:   RUNS (hyperfine runs, default 20), SECS (iperf3 seconds, default 5)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$here/target}/x86_64-unknown-linux-gnu/dist}
runs=${RUNS:-20}
secs=${SECS:-5}
for b in berth berth-monitor berth-runtime berth-init; do
  [ -x "$bin/$b" ] || { echo "no $b in $bin (build it with: cargo dist)" >&2; exit 1; }
done
for t in hyperfine jq podman iperf3 nsenter; do
  command -v "$t" >/dev/null || { echo "missing $t: run ../shared/peers/setup-peers.sh" >&2; exit 1; }
done
[ -x "$here/../shared/peers/setup-peers.sh" ] && "$here/../shared/peers/setup-peers.sh" >/dev/null

work=$(mktemp -d /var/tmp/berth-bench-net-XXXXXX)
runwork=$(mktemp -d /run/berth-bench-net-XXXXXX)
export BERTH_ROOT=$work/berth/root BERTH_RUNROOT=$runwork/berth
berth="$bin/berth"
podman="podman --root $work/podman/root --runroot $runwork/podman --storage-driver overlay"
iperf_pids=()
cleanup() {
  for p in "${iperf_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$berth" rm -f $("$berth" ps -aq) >/dev/null 2>&1 || true
  "$berth" network reset >/dev/null 2>&1 || true
  $podman rm -af -t 0 >/dev/null 2>&1 || true
  $podman rmi -af >/dev/null 2>&1 || true
  umount "$work/podman/root/overlay" 2>/dev/null || true
  rm -rf "$work" "$runwork"
}
trap cleanup EXIT

. "$here/scripts/lib/busybox-tar.sh"
busybox_tar "$work"
"$berth" import "$work/busybox.tar" bench/busybox >/dev/null
$podman import "$work/busybox.tar" localhost/bench/busybox >/dev/null

# iperf3 -c from the netns of pid $1 to $2 (a server in the netns of pid $3,
# or on the host when $3 is empty); prints Gbit/s.
throughput() {
  local client=$1 addr=$2 server=$3 port=$4
  if [ -n "$server" ]; then
    nsenter -t "$server" -n iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
  else
    iperf3 -s -1 -p "$port" -B "$addr" >/dev/null 2>&1 &
  fi
  iperf_pids+=($!)
  sleep 0.5
  local run=(iperf3 -c "$addr" -p "$port" -t "$secs" -J)
  [ -n "$client" ] && run=(nsenter -t "$client" -n "${run[@]}")
  "${run[@]}" | jq '.end.sum_received.bits_per_second / 1e9 * 100 | floor / 100'
}

echo "== 1. TCP throughput, iperf3 ${secs}s, container to container"
lo=$(throughput "" 127.0.0.1 "" 15201)
b1=$("$berth" run -d bench/busybox sleep 600)
b2=$("$berth" run -d bench/busybox sleep 600)
b1pid=$("$berth" inspect -f '{{.State.Pid}}' "$b1")
b2pid=$("$berth" inspect -f '{{.State.Pid}}' "$b2")
b2ip=$("$berth" inspect -f '{{.NetworkSettings.IPAddress}}' "$b2")
bt=$(throughput "$b1pid" "$b2ip" "$b2pid" 15202)
p1=$($podman run -d localhost/bench/busybox sleep 600)
p2=$($podman run -d localhost/bench/busybox sleep 600)
p1pid=$($podman inspect -f '{{.State.Pid}}' "$p1")
p2pid=$($podman inspect -f '{{.State.Pid}}' "$p2")
p2ip=$($podman inspect -f '{{.NetworkSettings.IPAddress}}' "$p2")
pt=$(throughput "$p1pid" "$p2ip" "$p2pid" 15203)
"$berth" rm -f "$b1" "$b2" >/dev/null
$podman rm -f -t 0 "$p1" "$p2" >/dev/null
echo "host loopback:        $lo Gbit/s"
echo "berth default bridge: $bt Gbit/s ($(jq -n "$bt / $lo * 100 | floor") % of loopback)"
echo "podman default net:   $pt Gbit/s ($(jq -n "$pt / $lo * 100 | floor") % of loopback)"
echo "berth / podman:       $(jq -n "$bt / $pt * 100 | floor / 100")"

echo "== 2. run --rm busybox true, default networks (${runs} runs)"
json=$work/hf.json
hyperfine -N -w 3 -r "$runs" --export-json "$json" \
  "$berth run --rm bench/busybox true" \
  "$podman run --rm localhost/bench/busybox true" \
  "$berth run --rm --network none bench/busybox true" >/dev/null
jq -r '.results[] | "\(.command | split(" ") | .[0] | split("/") | last) \(.command | test("none") | if . then "(--network none)" else "(default network)" end): mean \(.mean*1000|floor) ms, min \(.min*1000|floor) ms"' "$json"
jq -r '"berth is \((.results[1].mean/.results[0].mean*10|floor)/10)x faster than podman with their default networks; the bridge costs berth \(((.results[0].mean-.results[2].mean)*1000*10|floor)/10) ms per run"' "$json"
