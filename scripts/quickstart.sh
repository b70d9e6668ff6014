#!/usr/bin/env bash
# berth quickstart on a fresh Debian 12 machine (as root, offline apart from the
# package registries): installs what is needed, builds berth, imports a busybox
# image made from the host's static busybox, runs containers from it with
# `berth run` (and once with berth's OCI runtime directly, runc-style).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# The shipped build (static binaries, see .cargo/config.toml's `dist` alias).
cargo dist
bin=${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/dist

work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
export BERTH_ROOT=$work/root BERTH_RUNROOT=$work/run
cleanup() {
  "$bin/berth" rm -f web site >/dev/null 2>&1 || true
  # This private root's default bridge and nftables table.
  "$bin/berth" network reset >/dev/null 2>&1 || true
  "$bin/berth-runtime" --root "$work/runtime" delete --force quickstart >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. An image: a busybox root filesystem imported as busybox:latest.
#    Its rootfs stays in $work/bundle for step 4.
. scripts/lib/busybox-tar.sh
busybox_tar "$work/bundle"
"$bin/berth" import -c 'CMD ["/bin/sh"]' "$work/bundle/busybox.tar" busybox:latest
"$bin/berth" images

# 2. Containers, Docker-style.
"$bin/berth" run --rm busybox sh -c 'echo hello from $(hostname), pid $$ in its own namespaces'
"$bin/berth" run -d --name web --init busybox sh -c 'echo serving; exec sleep 600'
"$bin/berth" ps
"$bin/berth" exec web sh -c 'echo exec in $(hostname): $(ps | wc -l) lines of ps'
"$bin/berth" logs web
"$bin/berth" stop -t 2 web
"$bin/berth" ps -a
"$bin/berth" rm web

# 3. A published port and a named volume: busybox httpd on the default
#    bridge, fetched from the host.
"$bin/berth" run -d --name site -p 127.0.0.1:18080:80 -v quickstart-www:/www busybox \
  sh -c 'echo "hello from a berth container" > /www/index.html; exec httpd -f -p 80 -h /www'
for _ in $(seq 50); do
  out=$(/bin/busybox wget -q -O- http://127.0.0.1:18080/ 2>/dev/null) && break
  sleep 0.1
done
echo "wget 127.0.0.1:18080 -> ${out:-nothing}"
"$bin/berth" port site
"$bin/berth" rm -f site
"$bin/berth" volume ls

# 4. The runc walk-through with berth-runtime alone.
cd "$work/bundle"
"$bin/berth-runtime" spec
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from $(hostname): pid $$ in its own namespaces; cat \/proc\/self\/cgroup | head -3"/' config.json
"$bin/berth-runtime" --root "$work/runtime" run quickstart
