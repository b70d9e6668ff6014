#!/usr/bin/env bash
# berth-dns benchmark, side by side with podman's aardvark-dns (same job:
# the name server of user networks):
#  1. queries/second for container names answered locally (dnsperf)
#  2. queries/second for names forwarded to an upstream (a second
#     berth-dns answering locally stands in for the host's resolver, for both)
#  3. RSS of the idle server, and after the load
# Both servers get one network with 50 containers, on loopback addresses
# (127.88.250.x; all of 127/8 is local) and port 53.
#
# Usage: scripts/bench-dns.sh [berth-dns binary]
#        (default: the shipped build, target/x86_64-unknown-linux-gnu/dist/berth-dns)
# Env:   SECONDS_PER_RUN (dnsperf -l, default 10), CLIENTS (dnsperf -c, default 4)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dns=${1:-${CARGO_TARGET_DIR:-$here/target}/x86_64-unknown-linux-gnu/dist/berth-dns}
aardvark=${AARDVARK:-/usr/lib/podman/aardvark-dns}
secs=${SECONDS_PER_RUN:-10}
clients=${CLIENTS:-4}
[ -x "$dns" ] || { echo "no berth-dns at $dns (build it with: cargo dist)" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "missing dnsperf: apt-get install dnsperf" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-bench-dns-XXXXXX)
# Both servers daemonize and write their pid files.
cleanup() {
  for f in "$work"/b/berth-dns.pid "$work"/bup/berth-dns.pid "$work"/a/aardvark.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

B=127.88.250.1 BUP=127.88.250.2 A=127.88.250.3
records_json() {
  local sep=""
  for i in $(seq 2 51); do
    printf '%s{"ip":["10.250.0.%d"],"names":["c%d","alias%d"]}' "$sep" "$i" "$i" "$i"
    sep=","
  done
}
mkdir -p "$work/b" "$work/bup" "$work/a"
echo "{\"network\":\"bench\",\"listen\":[\"$B\"],\"upstreams\":[\"$BUP\"],\"records\":[$(records_json)]}" > "$work/b/bench.json"
echo "{\"network\":\"up\",\"listen\":[\"$BUP\"],\"records\":[{\"ip\":[\"10.251.0.2\"],\"names\":[\"remote.example\"]}]}" > "$work/bup/up.json"
# aardvark-dns: first line the listen addresses, then "id ipv4 ipv6 names"
# per container.
{ echo "$A"; for i in $(seq 2 51); do printf '%012x 10.250.0.%d  c%d,alias%d\n' "$i" "$i" "$i" "$i"; done; } > "$work/a/bench"

"$dns" --config-dir "$work/bup"
"$dns" --config-dir "$work/b"
have_aardvark=0
if [ -x "$aardvark" ]; then
  # aardvark-dns 1.4 forwards to the host's resolv.conf nameservers only:
  # give it one naming the same upstream as berth-dns's (in a private
  # mount namespace, which the daemon keeps).
  echo "nameserver $BUP" > "$work/resolv.conf"
  unshare -m sh -c "mount --bind '$work/resolv.conf' /etc/resolv.conf && '$aardvark' --config '$work/a' -p 53 run" >/dev/null 2>&1
  have_aardvark=1
fi
sleep 0.5

for i in $(seq 2 51); do echo "c$i A"; echo "alias$i A"; done > "$work/local.q"
echo "remote.example A" > "$work/fwd.q"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
perf() { # server queries -> qps
  dnsperf -s "$1" -d "$2" -l "$secs" -c "$clients" -q 100 2>&1 \
    | awk '/Queries per second/ {printf "%d", $4}'
}
bpid=$(cat "$work/b/berth-dns.pid")
apid=$([ $have_aardvark = 1 ] && cat "$work/a/aardvark.pid" || true)
printf '%-34s %14s %14s\n' "" berth-dns aardvark-dns
printf '%-34s %14s %14s\n' "idle RSS (KiB)" "$(rss "$bpid")" "${apid:+$(rss "$apid")}"
bl=$(perf $B "$work/local.q"); al=$([ $have_aardvark = 1 ] && perf $A "$work/local.q" || echo -)
printf '%-34s %14s %14s\n' "local names, queries/s" "$bl" "$al"
bf=$(perf $B "$work/fwd.q"); af=$([ $have_aardvark = 1 ] && perf $A "$work/fwd.q" || echo -)
printf '%-34s %14s %14s\n' "forwarded names, queries/s" "$bf" "$af"
printf '%-34s %14s %14s\n' "RSS after the load (KiB)" "$(rss "$bpid")" "${apid:+$(rss "$apid")}"
# berth-dns gives the heap of a burst back at its next idle check (30 s).
sleep "${IDLE_WAIT:-35}"
printf '%-34s %14s %14s\n' "RSS 35 s after the load (KiB)" "$(rss "$bpid")" "${apid:+$(rss "$apid")}"
