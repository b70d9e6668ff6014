# Sourced by the scripts that need a busybox image or bundle offline
# (quickstart, benchmarks, symbol-order.sh): no registry here, so it is made
# from the host's static busybox (package busybox-static).

# busybox_rootfs DIR: DIR/rootfs with /bin/busybox, a link per applet and
# a root user.
busybox_rootfs() {
  local rootfs=$1/rootfs applet
  mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$rootfs/bin/"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
  echo 'root:x:0:' >"$rootfs/etc/group"
}

# busybox_tar DIR: that rootfs (staged in DIR/rootfs) as DIR/busybox.tar.
busybox_tar() {
  busybox_rootfs "$1"
  tar -C "$1/rootfs" -cf "$1/busybox.tar" .
}
