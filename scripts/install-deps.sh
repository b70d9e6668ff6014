#!/usr/bin/env bash
# Installs what building and testing berth needs on a fresh Debian 12 machine
# (as root): the C libraries berth links, busybox-static for test images, and
# the peer tools the interop tests and benchmarks compare with.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pkgs="build-essential pkg-config libseccomp-dev busybox-static iproute2 nftables
      runc crun podman skopeo umoci conmon hyperfine time
      qemu-system-x86 jq
      docker-registry apache2-utils openssl curl e2fsprogs util-linux
      iperf3 dnsperf"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
# The shared peer setup configures podman for this kind of machine (rlimits,
# runc as its default runtime) and imports localhost/busybox for comparisons.
if [ -x "$here/../shared/peers/setup-peers.sh" ] || [ -f "$here/../shared/peers/setup-peers.sh" ]; then
  bash "$here/../shared/peers/setup-peers.sh" >/dev/null
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
