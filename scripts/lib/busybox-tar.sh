# Sourced by the scripts that need a busybox image offline (quickstart,
# benchmarks, symbol-order.sh): no registry here, so the image is made from
# the host's static busybox (package busybox-static).

# busybox_tar DIR: writes DIR/busybox.tar, a root filesystem with
# /bin/busybox, a link per applet and a root user (staged in DIR/rootfs).
busybox_tar() {
  local rootfs=$1/rootfs applet
  mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$rootfs/bin/"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
  echo 'root:x:0:' >"$rootfs/etc/group"
  tar -C "$rootfs" -cf "$1/busybox.tar" .
}
