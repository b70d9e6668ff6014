#!/usr/bin/env bash
# Runs an OCI runtime's cgroup v2 code paths for real: boots a throwaway QEMU
# (TCG) guest on a pure cgroup v2 hierarchy (cgroup_no_v1=all), starts busybox
# containers there with the runtime and reads every limit back from the
# guest's side of /sys/fs/cgroup.
#
# This machine (and CI's) is hybrid: the v2 hierarchy has no controllers, so
# v2 limits, the eBPF device filter, cgroup.freeze and cgroup2 mounts in a
# cgroup namespace can only be exercised inside a VM. KVM guests hang here,
# hence TCG; Debian's kernel boots with an initramfs in a few seconds.
#
# Usage: scripts/cgroup-v2-vm.sh [--keep-workdir] RUNTIME_BINARY
#   RUNTIME_BINARY  berth-runtime (or runc, to check the checks themselves)
# Environment:
#   BERTH_TEST_KERNEL      a bzImage to boot instead of the cached Debian one
#   BERTH_TEST_KERNEL_DIR  kernel cache (default /var/cache/berth-test-kernel)
#   BERTH_VM_TIMEOUT       seconds the guest may run (default 300: 35-40 s on
#                          a 2-core host at load 5-7, more when it is busier:
#                          TCG has no vCPU of its own)
# Prints the guest's `CHECK <name> PASS|FAIL <detail>` lines.
# Exit status: 0 every check passed; 1 a check failed or the guest broke;
# 2 usage; 77 skipped (no qemu-system-x86_64 or no guest kernel to be had).
set -euo pipefail

keep_workdir=0
if [ "${1:-}" = "--keep-workdir" ]; then keep_workdir=1; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: $0 [--keep-workdir] RUNTIME_BINARY" >&2
  exit 2
fi
runtime=$(readlink -f "$1")
[ -x "$runtime" ] || { echo "error: runtime $1 is not an executable file" >&2; exit 2; }
vm_timeout=${BERTH_VM_TIMEOUT:-300}

# The checks the guest must report, in the order it runs them. A check that
# never reports (guest crashed, script broke) counts as failed.
checks="root_controllers run_exit0 default_path memory_max cpu_max cpu_weight pids_max
        memory_low cpuset hugetlb_max unified_memory_high exec_joins_cgroup update_memory
        update_swap update_cpu_pids update_unlimited ps_json pause_resume update_keeps_paused
        exec_paused_refused events_stats delete_force_paused
        kill_all memory_swap_max oom_kill events_oom pids_fork_limit devices_defaults
        devices_deny devices_allow userns_cgroup_mount userns_cgroupns_mount cgroupns_mount
        cgroupns_exec delete_removes_cgroup"

skip() { echo "SKIPPED: $*"; exit 77; }

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
for tool in busybox jq strip ldd; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
busybox_bin=$(command -v busybox)
# The guest has no libc of its own: busybox must be the static build.
if ldd "$busybox_bin" >/dev/null 2>&1; then
  skip "$busybox_bin is dynamically linked (install busybox-static)"
fi

# --- guest kernel: Debian's linux-image, unpacked into a cache (never installed) ---
kernel_cache() {
  local dir=${BERTH_TEST_KERNEL_DIR:-/var/cache/berth-test-kernel}
  if mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ]; then echo "$dir"; return; fi
  dir=${XDG_CACHE_HOME:-$HOME/.cache}/berth-test-kernel
  mkdir -p "$dir" && echo "$dir"
}

find_cached_kernel() {
  local k
  k=$(ls -1 "$1"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$k" ] && [ -s "$k" ] && echo "$k"
}

fetch_kernel() {
  local dir=$1 pkg dl
  # linux-image-amd64 is a metapackage; the kernel is in the versioned package
  # it depends on.
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
    | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || return 1
  dl=$(mktemp -d "$dir/download.XXXXXX")
  # apt-get download writes into the current directory; -o APT::Sandbox::User
  # keeps it from dropping to _apt, which cannot write a root-owned cache.
  if ! (cd "$dl" && apt-get download -o APT::Sandbox::User=root -qq "$pkg" >/dev/null 2>&1); then
    rm -rf "$dl"
    return 1
  fi
  # Only the bzImage is needed: the guest loads no modules (everything the
  # checks use is built into Debian's kernel).
  if ! dpkg-deb --fsys-tarfile "$dl"/*.deb | tar -x -C "$dl" --wildcards './boot/vmlinuz-*' './boot/config-*'; then
    rm -rf "$dl"
    return 1
  fi
  mkdir -p "$dir/boot"
  mv "$dl"/boot/* "$dir/boot/"
  rm -rf "$dl"
}

if [ -n "${BERTH_TEST_KERNEL:-}" ]; then
  kernel=$BERTH_TEST_KERNEL
  [ -s "$kernel" ] || skip "BERTH_TEST_KERNEL=$kernel does not exist"
else
  cache=$(kernel_cache) || skip "no writable kernel cache directory"
  kernel=$(find_cached_kernel "$cache" || true)
  if [ -z "$kernel" ]; then
    # Several test processes may start at once: one downloads, the others wait.
    exec 9>"$cache/.lock"
    flock 9
    kernel=$(find_cached_kernel "$cache" || true)
    if [ -z "$kernel" ]; then
      command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
        || skip "no guest kernel in $cache and no apt-get/dpkg-deb to fetch linux-image-amd64"
      fetch_kernel "$cache" || skip "could not download linux-image-amd64 into $cache"
      kernel=$(find_cached_kernel "$cache") || skip "linux-image-amd64 held no /boot/vmlinuz-*"
    fi
    flock -u 9
  fi
fi

# --- initramfs ---
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-v2vm.XXXXXX")
vm_pid=""
cleanup() {
  # timeout passes the TERM on to qemu
  [ -z "$vm_pid" ] || kill "$vm_pid" 2>/dev/null || true
  if [ "$keep_workdir" = 1 ]; then echo "workdir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
# a killed test run still removes the work dir
trap 'exit 143' TERM
trap 'exit 130' INT
tree=$work/initramfs
mkdir -p "$tree"/{bin,usr/local/bin,dev,proc,sys,run,tmp,etc,bundles,rootfs,newroot}

install_busybox() {
  local root=$1 applet
  cp "$busybox_bin" "$root/bin/busybox"
  for applet in $("$busybox_bin" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
}
install_busybox "$tree"

# The runtime and every shared object the loader maps for it, the loader
# included, at the paths ldd names. Debug info is stripped from the copy: it
# is most of a debug build's size and would only slow the guest's unpacking.
rt_name=$(basename "$runtime")
strip --strip-debug -o "$tree/usr/local/bin/$rt_name" "$runtime" 2>/dev/null \
  || cp "$runtime" "$tree/usr/local/bin/$rt_name"
ldd "$runtime" 2>/dev/null | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$tree$(dirname "$lib")"
  cp -L "$lib" "$tree$lib"
done

# The container image: static busybox with its applet links. Every bundle
# points at this one read-only rootfs.
mkdir -p "$tree"/rootfs/{bin,proc,sys,dev,tmp,etc,devnodes}
install_busybox "$tree/rootfs"
echo "root:x:0:0:root:/:/bin/sh" >"$tree/rootfs/etc/passwd"
echo "root:x:0:" >"$tree/rootfs/etc/group"

# Bundles: the runtime's own default spec, edited per check.
"$runtime" spec --bundle "$work" >/dev/null 2>&1 \
  || { echo "error: $runtime spec --bundle $work failed" >&2; exit 1; }
base=$work/config.json
[ -s "$base" ] || { echo "error: $runtime spec wrote no config.json" >&2; exit 1; }

# bundle ID CGROUPNS(yes|no) ARGS_JSON JQ_FILTER
bundle() {
  local id=$1 cgroupns=$2 args=$3 filter=$4
  mkdir -p "$tree/bundles/$id"
  jq --arg id "$id" --arg cgroupns "$cgroupns" --argjson args "$args" "
    .process.terminal = false
    | .process.args = \$args
    | .root = {path: \"/rootfs\", readonly: true}
    | .hostname = \$id
    | .linux.cgroupsPath = (\"/berth-v2vm/\" + \$id)
    | .linux.namespaces = ([.linux.namespaces[] | select(.type != \"cgroup\")]
        + (if \$cgroupns == \"yes\" then [{type: \"cgroup\"}] else [] end))
    | $filter" "$base" >"$tree/bundles/$id/config.json"
}

sleeper='["sleep","600"]'
bundle run_exit0 no '["sh","-c","echo hello-from-container"]' '.'
# Started before the guest enables any controller in the root: the runtime
# must enable what it needs from the root down, as runc does.
bundle root_controllers no '["true"]' '
  .linux.resources.memory = {limit: 41943040} | .linux.resources.pids = {limit: 50}'
# No cgroupsPath: the runtime's default place (berth, runc and crun: /<id>).
bundle default_path no '["cat","/proc/self/cgroup"]' 'del(.linux.cgroupsPath)'
# `events` must report an OOM kill of a child while the init survives.
bundle events_oom no '["sh","-c","sleep 2; sh -c \"x=0123456789abcdef; while :; do x=\\$x\\$x; done\"; sleep 600"]' '
  .linux.resources.memory = {limit: 33554432, swap: 33554432}'
bundle limits no "$sleeper" '
  .linux.resources.memory = {limit: 67108864, reservation: 16777216}
  | .linux.resources.cpu = {quota: 50000, period: 100000, burst: 10000, shares: 512, cpus: "1", mems: "0"}
  | .linux.resources.pids = {limit: 10}
  | .linux.resources.hugepageLimits = [{pageSize: "2MB", limit: 4194304}]
  | .linux.resources.unified = {"memory.high": "62914560"}'
# kill --all: a shell and three children, all in the container's cgroup
bundle killall no '["sh","-c","sleep 600 | sleep 600 | sleep 600"]' '.'

# The hogs use no device node, so that a broken device filter cannot hide
# (or fake) what the memory and pids controllers do. The shell doubles a
# string until it holds far more than the 32 MiB limit (no swap: the guest
# has none, and memory.swap.max is pinned to 0 as well).
bundle oom_kill no '["sh","-c","x=0123456789abcdef; while :; do x=$x$x; done"]' '
  .linux.resources.memory = {limit: 33554432, swap: 33554432}'
# A fork loop: a 40-stage pipeline (a background job would need /dev/null).
# With pids.max 10, fork fails long before, ash says "can't fork" and exits
# non-zero without "spawned"; unlimited, it prints "spawned" after 5 s.
fork_loop="sleep 5$(for _ in $(seq 39); do printf ' | sleep 5'; done); echo spawned"
bundle pids_fork no "$(jq -cn --arg s "$fork_loop" '["sh","-c",$s]')" '
  .linux.resources.pids = {limit: 10}'
# /devnodes/kmsg (c 1:11) and /devnodes/null (c 1:3) are mknod'ed by the
# guest before the containers start. Writing /dev/kmsg needs no capability,
# so the device cgroup is the only thing that can refuse it. /dev/null stays
# usable: runtimes allow it (and the other standard devices) by default.
devices_script='for dev in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /devnodes/null; do
  # subshells: a failed redirection of a special builtin ends ash itself
  ( : <$dev ) && ( : >$dev ) || echo "refused $dev"
done
if ( echo "<7>berth-v2vm probe" >/devnodes/kmsg ); then echo kmsg-open-ok; else echo kmsg-open-refused; fi'
bundle devices_deny no "$(jq -cn --arg s "$devices_script" '["sh","-c",$s]')" '.'
bundle devices_allow no "$(jq -cn --arg s "$devices_script" '["sh","-c",$s]')" '
  .linux.resources.devices += [{allow: true, type: "c", major: 1, minor: 11, access: "rw"}]'
# A user namespace without a cgroup namespace may not mount cgroup2 (EPERM):
# runtimes bind-mount (a part of) the host's hierarchy instead. With a cgroup
# namespace the real mount is allowed and is rooted at the container's cgroup.
userns_filter='.linux.namespaces += [{type: "user"}]
  | .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
  | .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]'
# prints: own cgroup; the /sys/fs/cgroup mount's root and fs type; whether
# the container's own dir is visible below it; the mount root's pids.max
userns_script='cat /proc/self/cgroup
awk '\''$5 == "/sys/fs/cgroup" { for (i = 7; i <= NF; i++) if ($i == "-") { print $4, $(i + 1); exit } }'\'' /proc/self/mountinfo
ls /sys/fs/cgroup/berth-v2vm 2>/dev/null | grep -cx userns
cat /sys/fs/cgroup/pids.max 2>&1; true'
bundle userns no "$(jq -cn --arg s "$userns_script" '["sh","-c",$s]')" "$userns_filter"' | .linux.resources.pids = {limit: 33}'
bundle userns_cgns yes "$(jq -cn --arg s "$userns_script" '["sh","-c",$s]')" "$userns_filter"' | .linux.resources.pids = {limit: 33}'
# A cgroup namespace and the spec's cgroup mount: the init unshares the
# namespace once it is in its cgroup, and exec must join that namespace.
bundle cgroupns yes "$sleeper" '
  .linux.resources.memory = {limit: 50331648}
  | (if any(.mounts[]; .destination == "/sys/fs/cgroup") then . else
      .mounts += [{destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
                   options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}] end)'

# cpu.weight from shares 512: runc >= 1.3 (opencontainers/cgroups) maps
# shares onto weight with a quadratic-in-log curve (512 -> 59); runc before
# 1.3 used 1 + (shares-2)*9999/262142 (512 -> 20).
# runc 1.1 and older ignore cpu.burst.
runtime_version=$("$runtime" --version 2>/dev/null | head -n 1 || true)
expected_weight=59
check_burst=yes
case "$runtime_version" in
  "runc version 1."[012].*) expected_weight=20 ;;
esac
case "$runtime_version" in
  "runc version 1."[01].*) check_burst=no ;;
esac
[ "$check_burst" = yes ] && checks="$checks cpu_burst"

cat >"$tree/init" <<'EOF'
#!/bin/busybox sh
# Stage 1: pivot_root cannot leave the initramfs (rootfs), so copy everything
# onto a tmpfs and switch_root there before any container starts.
export PATH=/bin
mount -t tmpfs -o mode=0755 tmpfs /newroot
for entry in /*; do
  case "$entry" in /newroot|/proc|/sys|/dev) mkdir -p "/newroot$entry" ;; *) cp -a "$entry" /newroot/ ;; esac
done
exec switch_root /newroot /stage2
EOF
printf 'RT=/usr/local/bin/%s\nEXPECTED_WEIGHT=%s\nCHECK_BURST=%s\n' "$rt_name" "$expected_weight" "$check_burst" >"$tree/etc/v2vm.env"
cat >"$tree/stage2" <<'EOF'
#!/bin/sh
# Stage 2: a pure cgroup v2 host; run the checks, report, power off.
export PATH=/usr/local/bin:/bin
. /etc/v2vm.env
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
exec </dev/null
# the firmware's last line has no newline: start the report on a fresh line
echo

CG=/sys/fs/cgroup/berth-v2vm
L=/tmp/logs
mkdir -p $L
rt() { timeout 60 "$RT" --root /run/rt "$@"; }
# detail lines go to the console as "  | ..." so that a failure explains itself
show() { [ -s "$1" ] && sed 's/^/  | /' "$1" | head -n 20; true; }
up() { cut -d' ' -f1 /proc/uptime; }
pass() { echo "CHECK $1 PASS $2 [at $(up)s]"; }
fail() { echo "CHECK $1 FAIL $2 [at $(up)s]"; shift 2; for f in "$@"; do show "$f"; done; }

# --- controllers enabled by the runtime on a bare v2 root ---
rt run --keep --bundle /bundles/root_controllers root_controllers >$L/rootc.out 2>$L/rootc.err; rc=$?
enabled=$(cat /sys/fs/cgroup/cgroup.subtree_control)
got=$(cat $CG/root_controllers/memory.max $CG/root_controllers/pids.max 2>&1 | tr '\n' ' ')
if [ $rc = 0 ] && [ "$got" = "41943040 50 " ]; then
  pass root_controllers "memory.max, pids.max = $got; root subtree_control now '$enabled'"
else
  fail root_controllers "exit $rc, memory.max, pids.max = '$got', root subtree_control '$enabled'" $L/rootc.out $L/rootc.err
fi
rt delete root_controllers >/dev/null 2>&1 || echo "guest: delete root_controllers failed"
rootc_gone=$([ -e $CG/root_controllers ] && echo still-there || echo removed)

for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || echo "guest: could not enable $c"
done
echo "guest: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime)s, controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
mknod -m 0666 /rootfs/devnodes/kmsg c 1 11
mknod -m 0666 /rootfs/devnodes/null c 1 3

# expect NAME FILE VALUE: the cgroup file holds exactly VALUE
expect() {
  local got
  got=$(cat "$2" 2>&1)
  if [ "$got" = "$3" ]; then pass "$1" "$2 = $got"; else fail "$1" "$2 = '$got', want '$3'"; fi
}
state_status() { rt state "$1" 2>/dev/null | tr -d ' \n' | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'; }
gone=" root_controllers:$rootc_gone"
deleted() { [ -e "$CG/$1" ] && gone="$gone $1:still-there" || gone="$gone $1:removed"; }

# --- a container runs and exits 0 ---
rt run --bundle /bundles/run_exit0 run_exit0 >$L/run.out 2>$L/run.err; rc=$?
if [ $rc = 0 ] && grep -q hello-from-container $L/run.out; then
  pass run_exit0 "exit 0, output seen"
else
  fail run_exit0 "exit $rc" $L/run.out $L/run.err
fi
deleted run_exit0

rt run --bundle /bundles/default_path default_path >$L/defp.out 2>$L/defp.err; rc=$?
cgline=$(cat $L/defp.out)
dir=/sys/fs/cgroup${cgline#0::}
if [ $rc = 0 ] && [ "${cgline#0::/}" != "$cgline" ] && [ "$cgline" != "0::/" ] && [ ! -e "$dir" ]; then
  pass default_path "no cgroupsPath: ran in ${cgline#0::}, removed after run"
else
  fail default_path "exit $rc, /proc/self/cgroup '$cgline', dir $([ -e "$dir" ] && echo still there || echo gone)" $L/defp.out $L/defp.err
fi

# --- limits, exec, update, pause/resume, stats on one running container ---
rt create --bundle /bundles/limits limits >$L/limits.out 2>$L/limits.err; rc=$?
[ $rc = 0 ] || echo "guest: create limits failed ($rc): $(head -c 600 $L/limits.err)"
rt start limits 2>>$L/limits.err || echo "guest: start limits failed: $(head -c 600 $L/limits.err)"
expect memory_max $CG/limits/memory.max 67108864
expect cpu_max $CG/limits/cpu.max "50000 100000"
expect cpu_weight $CG/limits/cpu.weight "$EXPECTED_WEIGHT"
expect pids_max $CG/limits/pids.max 10
expect memory_low $CG/limits/memory.low 16777216
[ "$CHECK_BURST" = yes ] && expect cpu_burst $CG/limits/cpu.max.burst 10000
# the guest has two CPUs: only the container's own setting makes this "1"
got=$(cat $CG/limits/cpuset.cpus $CG/limits/cpuset.cpus.effective $CG/limits/cpuset.mems 2>&1 | tr '\n' ' ')
if [ "$got" = "1 1 0 " ]; then pass cpuset "cpus, effective cpus, mems = $got"; else fail cpuset "cpus, effective cpus, mems = '$got', want '1 1 0 '"; fi
expect hugetlb_max $CG/limits/hugetlb.2MB.max 4194304
expect unified_memory_high $CG/limits/memory.high 62914560

pid=$(rt state limits 2>/dev/null | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
rt exec limits cat /proc/self/cgroup >$L/exec.out 2>$L/exec.err; rc=$?
if [ $rc = 0 ] && [ "$(cat $L/exec.out)" = "0::/berth-v2vm/limits" ] \
   && [ -n "$pid" ] && grep -qx "$pid" $CG/limits/cgroup.procs; then
  pass exec_joins_cgroup "init $pid and exec'd process in /berth-v2vm/limits"
else
  fail exec_joins_cgroup "exit $rc, init pid '$pid', procs: $(cat $CG/limits/cgroup.procs 2>&1 | tr '\n' ' ')" $L/exec.out $L/exec.err
fi

rt update --memory 134217728 limits >$L/update.out 2>&1; rc=$?
got=$(cat $CG/limits/memory.max 2>&1)
if [ $rc = 0 ] && [ "$got" = 134217728 ]; then
  pass update_memory "memory.max = $got after update"
else
  fail update_memory "update exit $rc, memory.max = '$got', want 134217728" $L/update.out
fi

# v2 keeps swap apart from memory: memory.swap.max = memory-swap - memory
rt update --memory 134217728 --memory-swap 201326592 limits >$L/update3.out 2>&1; rc=$?
got=$(cat $CG/limits/memory.max $CG/limits/memory.swap.max 2>&1 | tr '\n' ' ')
if [ $rc = 0 ] && [ "$got" = "134217728 67108864 " ]; then
  pass update_swap "memory.max, memory.swap.max = $got"
else
  fail update_swap "exit $rc, memory.max, memory.swap.max = '$got', want '134217728 67108864 '" $L/update3.out
fi

rt update --pids-limit 20 --cpu-quota 20000 --cpu-period 100000 limits >$L/update2.out 2>&1; rc=$?
echo '{"pids": {"limit": 30}, "memory": {"low": 8388608}}' >/tmp/resources.json
rt update --resources /tmp/resources.json limits >>$L/update2.out 2>&1; rc2=$?
cpu=$(cat $CG/limits/cpu.max 2>&1); pids=$(cat $CG/limits/pids.max 2>&1)
if [ $rc = 0 ] && [ $rc2 = 0 ] && [ "$cpu" = "20000 100000" ] && [ "$pids" = 30 ]; then
  pass update_cpu_pids "cpu.max = $cpu after --cpu-quota, pids.max = $pids after --resources"
else
  fail update_cpu_pids "exit $rc/$rc2, cpu.max '$cpu' (want 20000 100000), pids.max '$pids' (want 30)" $L/update2.out
fi

# -1 means unlimited: "max" in every v2 file (and no u64 wrap-around)
echo '{"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1, "period": 100000}}' >/tmp/unlimited.json
rt update --resources /tmp/unlimited.json limits >$L/update4.out 2>&1; rc=$?
got=$(cat $CG/limits/memory.max $CG/limits/memory.swap.max $CG/limits/pids.max $CG/limits/cpu.max 2>&1 | tr '\n' ' ')
if [ $rc = 0 ] && [ "$got" = "max max max max 100000 " ]; then
  pass update_unlimited "memory.max, memory.swap.max, pids.max, cpu.max = $got"
else
  fail update_unlimited "exit $rc, memory.max, memory.swap.max, pids.max, cpu.max = '$got', want 'max max max max 100000 '" $L/update4.out
fi

rt ps --format json limits >$L/ps.out 2>&1; rc=$?
if [ $rc = 0 ] && [ -n "$pid" ] && tr -d ' \n' <$L/ps.out | grep -Eq "^\[([0-9]+,)*$pid(,[0-9]+)*\]$"; then
  pass ps_json "$(tr -d ' \n' <$L/ps.out)"
else
  fail ps_json "exit $rc, want init $pid in" $L/ps.out
fi

rt pause limits >$L/pause.out 2>&1; rc1=$?
freeze_p=$(cat $CG/limits/cgroup.freeze 2>&1); frozen_p=$(grep frozen $CG/limits/cgroup.events 2>&1)
status_p=$(state_status limits)
# while paused: an update must leave the cgroup frozen, and exec must be
# refused promptly instead of waiting on a frozen container
timeout 20 "$RT" --root /run/rt update --pids-limit 25 limits >$L/paused.out 2>&1; rc3=$?
freeze_u=$(cat $CG/limits/cgroup.freeze 2>&1); pids_u=$(cat $CG/limits/pids.max 2>&1)
timeout 20 "$RT" --root /run/rt exec limits true >>$L/paused.out 2>&1; rc4=$?
if [ $rc3 = 0 ] && [ "$freeze_u" = 1 ] && [ "$pids_u" = 25 ]; then
  pass update_keeps_paused "pids.max = $pids_u, cgroup.freeze still $freeze_u"
else
  fail update_keeps_paused "update exit $rc3, pids.max '$pids_u', cgroup.freeze '$freeze_u'" $L/paused.out
fi
if [ $rc4 != 0 ] && [ $rc4 != 124 ] && [ $rc4 != 137 ]; then
  pass exec_paused_refused "exit $rc4: $(tail -n 1 $L/paused.out)"
else
  fail exec_paused_refused "exec exit $rc4 (124: hung on the frozen container)" $L/paused.out
fi
rt resume limits >>$L/pause.out 2>&1; rc2=$?
freeze_r=$(cat $CG/limits/cgroup.freeze 2>&1); frozen_r=$(grep frozen $CG/limits/cgroup.events 2>&1)
status_r=$(state_status limits)
detail="pause exit $rc1: freeze=$freeze_p '$frozen_p' $status_p; resume exit $rc2: freeze=$freeze_r '$frozen_r' $status_r"
if [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$freeze_p" = 1 ] && [ "$frozen_p" = "frozen 1" ] \
   && [ "$status_p" = paused ] && [ "$freeze_r" = 0 ] && [ "$frozen_r" = "frozen 0" ] \
   && [ "$status_r" = running ]; then
  pass pause_resume "$detail"
else
  fail pause_resume "$detail" $L/pause.out
fi

rt events --stats limits >$L/events.out 2>$L/events.err; rc=$?
usage=$(tr -d ' \n' <$L/events.out | grep -o '"memory":{.*' | grep -o '"usage":{[^}]*}' | head -n 1 \
        | grep -o '"usage":[0-9]*' | grep -o '[0-9]*$')
pids_now=$(tr -d ' \n' <$L/events.out | grep -o '"pids":{"current":[0-9]*' | grep -o '[0-9]*$')
if [ $rc = 0 ] && [ -n "$usage" ] && [ "$usage" -gt 0 ] && [ "$pids_now" = 1 ]; then
  pass events_stats "memory.usage.usage = $usage, pids.current = $pids_now"
else
  fail events_stats "exit $rc, memory usage '$usage', pids.current '$pids_now' (want 1)" $L/events.out $L/events.err
fi

# delete --force of a paused container: the frozen tasks must still die
rt pause limits >$L/delete.out 2>&1
rt delete --force limits >>$L/delete.out 2>&1; rc=$?
if [ $rc = 0 ] && [ ! -e $CG/limits ] && ! rt state limits >/dev/null 2>&1; then
  pass delete_force_paused "cgroup and state gone"
else
  fail delete_force_paused "exit $rc, cgroup dir $([ -e $CG/limits ] && echo still there || echo gone)" $L/delete.out
fi
deleted limits

# --- kill --all ---
rt create --bundle /bundles/killall killall >/dev/null 2>$L/killall.err && rt start killall 2>>$L/killall.err
i=0; while [ $i -lt 50 ] && [ "$(wc -l <$CG/killall/cgroup.procs 2>/dev/null)" != 4 ]; do sleep 0.1; i=$((i+1)); done
before=$(wc -l <$CG/killall/cgroup.procs 2>/dev/null)
rt kill --all killall KILL >>$L/killall.err 2>&1; rc=$?
i=0; while [ $i -lt 50 ] && [ -s $CG/killall/cgroup.procs ]; do sleep 0.1; i=$((i+1)); done
after=$(wc -l <$CG/killall/cgroup.procs 2>/dev/null)
i=0; while [ $i -lt 50 ] && [ "$(state_status killall)" != stopped ]; do sleep 0.1; i=$((i+1)); done
st=$(state_status killall)
if [ $rc = 0 ] && [ "$before" = 4 ] && [ "$after" = 0 ] && [ "$st" = stopped ]; then
  pass kill_all "4 processes -> 0, state stopped"
else
  fail kill_all "exit $rc, processes $before -> $after, state '$st'" $L/killall.err
fi
rt delete killall >/dev/null 2>&1 || echo "guest: delete killall failed"
deleted killall

# --- OOM kill ---
rt run --keep --bundle /bundles/oom_kill oom_kill >$L/oom.out 2>$L/oom.err; rc=$?
kills=$(sed -n 's/^oom_kill //p' $CG/oom_kill/memory.events 2>/dev/null)
expect memory_swap_max $CG/oom_kill/memory.swap.max 0
if [ $rc = 137 ] && [ -n "$kills" ] && [ "$kills" -ge 1 ]; then
  pass oom_kill "exit 137, memory.events oom_kill $kills"
else
  fail oom_kill "exit $rc, memory.events oom_kill '$kills'" $L/oom.out $L/oom.err $CG/oom_kill/memory.events
fi
rt delete oom_kill >/dev/null 2>&1 || echo "guest: delete oom_kill failed"
deleted oom_kill

# --- OOM event from `events` ---
rt create --bundle /bundles/events_oom events_oom >/dev/null 2>$L/evoom.err && rt start events_oom 2>>$L/evoom.err
# not through rt(): $! must be timeout's pid, which passes SIGTERM on
: >$L/evoom.out
timeout 60 "$RT" --root /run/rt events --interval 30s events_oom >$L/evoom.out 2>>$L/evoom.err &
events_pid=$!
i=0; while [ $i -lt 200 ] && ! tr -d ' ' <$L/evoom.out | grep -q '"type":"oom"'; do sleep 0.1; i=$((i+1)); done
kill $events_pid 2>/dev/null
wait $events_pid 2>/dev/null
kills=$(sed -n 's/^oom_kill //p' $CG/events_oom/memory.events 2>/dev/null)
alive=$(state_status events_oom)
if tr -d ' ' <$L/evoom.out | grep -q '"type":"oom","id":"events_oom"' && [ "$alive" = running ]; then
  pass events_oom "oom event printed, memory.events oom_kill $kills, init still $alive"
else
  fail events_oom "no oom event (memory.events oom_kill '$kills', init $alive)" $L/evoom.out $L/evoom.err
fi
rt delete --force events_oom >/dev/null 2>&1 || echo "guest: delete events_oom failed"
deleted events_oom

# --- fork loop under pids.max ---
rt run --keep --bundle /bundles/pids_fork pids_fork >$L/fork.out 2>$L/fork.err; rc=$?
maxed=$(sed -n 's/^max //p' $CG/pids_fork/pids.events 2>/dev/null)
pmax=$(cat $CG/pids_fork/pids.max 2>/dev/null)
if [ $rc != 0 ] && ! grep -q spawned $L/fork.out && [ "$pmax" = 10 ] \
   && [ -n "$maxed" ] && [ "$maxed" -ge 1 ]; then
  pass pids_fork_limit "exit $rc, pids.max $pmax, pids.events max $maxed, $(head -n 1 $L/fork.err)"
else
  fail pids_fork_limit "exit $rc, pids.max '$pmax', pids.events max '$maxed'" $L/fork.out $L/fork.err
fi
rt delete pids_fork >/dev/null 2>&1 || echo "guest: delete pids_fork failed"
deleted pids_fork

# --- eBPF device filter ---
rt run --bundle /bundles/devices_deny devices_deny >$L/devd.out 2>$L/devd.err; rc=$?
if [ $rc = 0 ] && ! grep -q '^refused' $L/devd.out; then
  pass devices_defaults "null zero full random urandom (and a mknod'ed c 1:3) usable under a deny-all spec"
else
  fail devices_defaults "exit $rc, $(grep '^refused' $L/devd.out | tr '\n' ' ')" $L/devd.err
fi
if [ $rc = 0 ] && grep -qx kmsg-open-refused $L/devd.out && grep -q "devnodes/kmsg: Operation not permitted" $L/devd.err; then
  pass devices_deny "mknod'ed c 1:11 refused with EPERM"
else
  fail devices_deny "exit $rc" $L/devd.out $L/devd.err
fi
deleted devices_deny
rt run --bundle /bundles/devices_allow devices_allow >$L/deva.out 2>$L/deva.err; rc=$?
if [ $rc = 0 ] && grep -qx kmsg-open-ok $L/deva.out; then
  pass devices_allow "c 1:11 rw allowed by a rule opens"
else
  fail devices_allow "exit $rc" $L/deva.out $L/deva.err
fi
deleted devices_allow

# --- cgroup namespace + cgroup2 mount ---
# user namespace without a cgroup namespace: the whole hierarchy, bound
rt run --bundle /bundles/userns userns >$L/userns.out 2>$L/userns.err; rc=$?
line() { sed -n "$1p" $2; }
# runc binds the whole hierarchy; crun-style runtimes bind only the
# container's own cgroup (siblings stay hidden): both are fine here.
mnt=$(line 2 $L/userns.out)
if [ $rc = 0 ] && [ "$(line 1 $L/userns.out)" = "0::/berth-v2vm/userns" ] \
   && { { [ "$mnt" = "/ cgroup2" ] && [ "$(line 3 $L/userns.out)" = 1 ]; } \
        || { [ "$mnt" = "/berth-v2vm/userns cgroup2" ] && [ "$(line 4 $L/userns.out)" = 33 ]; }; }; then
  pass userns_cgroup_mount "user ns, no cgroup ns: bound cgroup2 at /sys/fs/cgroup (root, type: $mnt)"
else
  fail userns_cgroup_mount "exit $rc" $L/userns.out $L/userns.err
fi
deleted userns
rt run --bundle /bundles/userns_cgns userns_cgns >$L/usercg.out 2>$L/usercg.err; rc=$?
if [ $rc = 0 ] && [ "$(line 1 $L/usercg.out)" = "0::/" ] && [ "$(line 2 $L/usercg.out)" = "/ cgroup2" ] \
   && [ "$(line 4 $L/usercg.out)" = 33 ]; then
  pass userns_cgroupns_mount "user + cgroup ns: own cgroup mounted as root, pids.max $(line 4 $L/usercg.out)"
else
  fail userns_cgroupns_mount "exit $rc" $L/usercg.out $L/usercg.err
fi
deleted userns_cgns

rt create --bundle /bundles/cgroupns cgroupns >/dev/null 2>$L/ns.err && rt start cgroupns 2>>$L/ns.err
pid=$(rt state cgroupns 2>/dev/null | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
init_ns=$(readlink /proc/$pid/ns/cgroup 2>&1); host_ns=$(readlink /proc/self/ns/cgroup)
rt exec cgroupns sh -c 'cat /proc/1/cgroup; cat /sys/fs/cgroup/memory.max; ls /sys/fs/cgroup | grep -c berth-v2vm
  grep " /sys/fs/cgroup " /proc/self/mountinfo; cat /proc/self/cgroup; readlink /proc/self/ns/cgroup' >$L/ns.out 2>>$L/ns.err; rc=$?
# the init: its own namespace, rooted at its own cgroup, and a cgroup2 mount
# whose root is that cgroup (memory.max exists only below the root)
if [ $rc = 0 ] && [ -n "$pid" ] && [ "$init_ns" != "$host_ns" ] && [ "$(line 1 $L/ns.out)" = "0::/" ] \
   && [ "$(line 2 $L/ns.out)" = 50331648 ] && [ "$(line 3 $L/ns.out)" = 0 ] && line 4 $L/ns.out | grep -q ' - cgroup2 '; then
  pass cgroupns_mount "init in $init_ns (host $host_ns) sees 0::/, own memory.max $(line 2 $L/ns.out) at the mount's root"
else
  fail cgroupns_mount "exit $rc, init $pid in '$init_ns' (host '$host_ns')" $L/ns.out $L/ns.err
fi
if [ $rc = 0 ] && [ "$(line 5 $L/ns.out)" = "0::/" ] && [ "$(line 6 $L/ns.out)" = "$init_ns" ]; then
  pass cgroupns_exec "exec'd process in the init's $init_ns, sees 0::/"
else
  fail cgroupns_exec "exit $rc, exec'd process in '$(line 6 $L/ns.out)', want '$init_ns'" $L/ns.out $L/ns.err
fi
rt delete --force cgroupns >/dev/null 2>&1 || echo "guest: delete cgroupns failed"
deleted cgroupns

# --- delete removed every container cgroup (and the state) ---
left=$(rt list -q 2>/dev/null | tr '\n' ' ')
case "$gone" in
  *still-there*) fail delete_removes_cgroup "$gone; left in state: '$left'" ;;
  *) if [ -z "$left" ]; then pass delete_removes_cgroup "$gone"; else fail delete_removes_cgroup "state still lists: $left"; fi ;;
esac

echo "guest: dmesg tail:"; dmesg | tail -n 8 | sed 's/^/  | /'
echo "CHECKS-DONE at $(cut -d' ' -f1 /proc/uptime)s"
sync
poweroff -f
EOF
chmod 0755 "$tree/init" "$tree/stage2"

initrd=$work/initrd.gz
(cd "$tree" && find . -mindepth 1 | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$initrd"

# --- boot ---
log=$work/console.log
start=$(date +%s)
# -cpu qemu64, not max: with max, glibc picks AVX2 string functions that TCG
# emulates slowly (the whole run takes twice as long). Two vCPUs for the
# cpuset check, on one host thread: the host's cores are shared.
# In the background, so that a TERM to this script is handled at once (bash
# defers traps while a foreground child runs) and cleanup stops the guest.
set +e
timeout -k 5 "$vm_timeout" "$qemu" -accel tcg,thread=single -cpu qemu64 -smp 2 -m 768 -nographic -no-reboot \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=1 cgroup_no_v1=all panic=-1" </dev/null >"$log" 2>&1 &
vm_pid=$!
wait "$vm_pid"
qemu_rc=$?
vm_pid=""
set -e
elapsed=$(( $(date +%s) - start ))
# serial output carries CRs and the firmware's terminal escapes
sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' "$log" >"$log.txt"

failed=0
for name in $checks; do
  if ! grep -q "CHECK $name PASS" "$log.txt"; then
    failed=1
    grep -q "CHECK $name " "$log.txt" || echo "CHECK $name FAIL (never reported)" >>"$log.txt"
  fi
done
grep -q '^CHECKS-DONE' "$log.txt" || { failed=1; echo "guest did not finish (qemu exit $qemu_rc after ${elapsed}s)" >>"$log.txt"; }

if [ "$failed" = 0 ]; then
  grep -E '^(CHECK|guest: kernel|CHECKS-DONE)' "$log.txt"
  echo "all $(echo $checks | wc -w) cgroup v2 checks passed in the guest (${elapsed}s, $(basename "$kernel"), runtime $rt_name)"
  exit 0
fi
cat "$log.txt"
echo "cgroup v2 VM checks FAILED (${elapsed}s, $(basename "$kernel"), runtime $rt_name)"
exit 1
