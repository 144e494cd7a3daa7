#!/bin/sh
# PID 1 of a guest booted by scripts/test-kernels.sh: the host's root is
# mounted read-only; give the guest what a system has (proc, sys, tmpfs for
# /run and /tmp, bpffs, tracefs, debugfs), this kernel's modules, the
# results share on /mnt; run the guest tests; power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /mnt
. /mnt/guest.env
# The repository may live under /tmp, which gets a tmpfs of its own: keep it in view at /run/repo.
mkdir -p /run/repo
mount --bind "$REPO" /run/repo
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
# This kernel's modules are in the cache, not under /lib/modules: the kernel's
# own module requests and the tests' modprobe go through a wrapper that says where.
mkdir -p /tmp/bin
printf '#!/bin/sh\nexec /sbin/modprobe -d "%s" "$@"\n' "$KERNEL_DIR/root" > /tmp/bin/modprobe
chmod +x /tmp/bin/modprobe
echo /tmp/bin/modprobe > /proc/sys/kernel/modprobe
export PATH=/tmp/bin:$PATH
ip link set lo up
cd /run/repo
echo "guest: $(uname -r) up in $(cut -d' ' -f1 /proc/uptime) s" > /mnt/console.log
if [ -n "$GUEST_SCRIPT" ]; then
  PKTPATH_GUEST_KERNEL="$KERNEL_NAME" sh -c "$GUEST_SCRIPT" >> /mnt/console.log 2>&1
else
  PKTPATH_GUEST_KERNEL="$KERNEL_NAME" node --test --test-concurrency=1 --test-reporter=tap $GUEST_TESTS > /mnt/result.tap 2>> /mnt/console.log
fi
echo "$?" > /mnt/exit
sync
echo o > /proc/sysrq-trigger
exec /bin/busybox sleep 60
