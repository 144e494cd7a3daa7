#!/usr/bin/env bash
# Fetches what `npm run test:kernels` boots: qemu and busybox from Debian's
# packages, and three stock Debian kernels (bullseye's 5.10, bookworm's 6.1,
# bookworm-backports' 6.12) unpacked into a cache, each with its modules indexed and a small
# initramfs that mounts the host's root over 9p. Idempotent: what is cached is kept.
set -euo pipefail
CACHE=${PKTPATH_KERNEL_CACHE:-/var/cache/pktpath-kernels}
mkdir -p "$CACHE"
say() { echo "fetch-kernels: $*" >&2; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# A private apt state for bullseye and bookworm-backports: the machine's own sources are left alone.
apt_private() {
  local tool=$1
  shift
  local dir=$CACHE/apt
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/etc/preferences.d"
  if ! grep -qs bullseye "$dir/etc/sources.list"; then
    echo 'deb http://deb.debian.org/debian bookworm main' > "$dir/etc/sources.list"
    echo 'deb http://deb.debian.org/debian bookworm-backports main' >> "$dir/etc/sources.list"
    echo 'deb http://deb.debian.org/debian-security bookworm-security main' >> "$dir/etc/sources.list"
    echo 'deb http://deb.debian.org/debian bullseye main' >> "$dir/etc/sources.list"
    echo 'deb http://deb.debian.org/debian-security bullseye-security main' >> "$dir/etc/sources.list"
  fi
  "$tool" -o Dir::Etc::sourcelist="$dir/etc/sources.list" -o Dir::Etc::sourceparts=- -o Dir::Etc::preferencesparts="$dir/etc/preferences.d" \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache::Archives="$dir/archives" -o Debug::NoLocking=1 "$@"
}

# unpack NAME PACKAGE: the kernel image and modules in $CACHE/NAME/root, indexed.
unpack() {
  local name=$1 pkg=$2 dir=$CACHE/$1
  if [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ]; then return; fi
  rm -rf "$dir" && mkdir -p "$dir/root"
  (cd "$dir" && apt_private apt-get -o APT::Sandbox::User=root download "$pkg" >/dev/null)
  dpkg-deb -x "$dir"/*.deb "$dir/root"
  rm -f "$dir"/*.deb
  local version
  version=$(ls "$dir/root/lib/modules")
  depmod -b "$dir/root" "$version"
  cp "$dir/root/boot/vmlinuz-$version" "$dir/vmlinuz"
  echo "$version" > "$dir/version"
  make_initrd "$dir" "$version"
  say "$name: $version"
}

# A busybox initramfs: load the 9p and virtio modules, mount the host's root, switch to the guest script.
make_initrd() {
  local dir=$1 version=$2 work
  work=$(mktemp -d)
  mkdir -p "$work"/{bin,dev,proc,sys,newroot,lib/modules}
  cp /bin/busybox "$work/bin/busybox"
  # The 9p root's modules with their dependencies, in load order (modules.dep).
  local mods=() seen=" " f m
  while read -r _ f _; do
    m=$(basename "$f"); m=${m%%.ko*}
    case "$seen" in *" $m "*) continue ;; esac
    seen+="$m "
    case "$f" in
      *.xz) xz -dc "$f" > "$work/lib/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" > "$work/lib/modules/$m.ko" ;;
      *) cp "$f" "$work/lib/modules/$m.ko" ;;
    esac
    mods+=("$m")
  done < <(for t in virtio_pci 9pnet_virtio 9p; do modprobe -d "$dir/root" -S "$version" --show-depends "$t" 2>/dev/null | grep '^insmod ' || true; done)
  cat > "$work/init" <<INIT
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in ${mods[*]}; do /bin/busybox insmod /lib/modules/\$m.ko 2>/dev/null; done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /newroot || { echo "initrd: no 9p root"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev 2>/dev/null || /bin/busybox umount /dev
exec /bin/busybox switch_root /newroot "\$(/bin/busybox sed -n 's/.*pktpath.init=\([^ ]*\).*/\1/p' /proc/cmdline 2>/dev/null || echo /sbin/init)"
INIT
  # /proc is unmounted before switch_root: read the init path first.
  sed -i 's|^/bin/busybox umount /proc /sys|INITPATH=$(/bin/busybox sed -n "s/.*pktpath.init=\\([^ ]*\\).*/\\1/p" /proc/cmdline)\n/bin/busybox umount /proc /sys|; s|exec /bin/busybox switch_root /newroot .*|exec /bin/busybox switch_root /newroot "$INITPATH"|' "$work/init"
  chmod +x "$work/init"
  (cd "$work" && find . | cpio -o -H newc --quiet | gzip -1 > "$dir/initrd.img")
  rm -rf "$work"
}

say "updating the package lists (bullseye, bookworm, bookworm-backports)"
apt_private apt-get update -qq >/dev/null
# The newest of each series, by package name (linux-image-6.1.0-57-amd64, linux-image-6.12.48+deb12-amd64).
newest() { apt_private apt-cache pkgnames "$1" | grep -E '^linux-image-[0-9.]+(-[0-9]+)?(\+deb[0-9]+)?-amd64$' | sort -V | tail -n1; }
k510=$(newest linux-image-5.10.0-)
k61=$(newest linux-image-6.1.0-)
k612=$(newest linux-image-6.12.)
[ -n "$k61" ] || { say "no 6.1 kernel package found"; exit 1; }
unpack debian-6.1 "$k61"
if [ -n "$k510" ]; then unpack debian-5.10 "$k510"; else say "no 5.10 kernel in bullseye"; fi
if [ -n "$k612" ]; then unpack debian-6.12 "$k612"; else say "no 6.12 kernel in bookworm-backports"; fi
ls -d "$CACHE"/debian-* 
