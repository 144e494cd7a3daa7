#!/usr/bin/env bash
# `npm run test:kernels`: boots stock Debian kernels (5.10, 6.1, 6.12) under qemu
# (TCG: no KVM here) with this machine's root shared read-only, runs
# test/kernels/*.test.js inside each, and reports the guests' results
# in the Node test runner's TAP, each test named after its kernel. Exits 1
# when a test fails or a guest reports nothing.
#   scripts/test-kernels.sh [debian-5.10 debian-6.1 debian-6.12]
# PKTPATH_GUEST_TESTS: what node --test runs in the guest (default: every test/kernels/*.test.js;
# e.g. "--test-name-pattern=retval dist/test/kernels/guest.test.js").
# PKTPATH_GUEST_SCRIPT: a shell command the guest runs instead of the tests (a bench:
# `npm run bench:kernels`); what it prints is printed here, and its exit status is this script's.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${PKTPATH_KERNEL_CACHE:-/var/cache/pktpath-kernels}
bash scripts/fetch-kernels.sh >&2
[ -e dist/test/kernels/guest.test.js ] || npm run build >&2
kernels=("$@")
# 5.10 is the slowest guest (~20-30 min under TCG beside other work; 6.1 and 6.12 ~7 min each): without kprobe-multi
# each function is a kprobe of its own, so its tests time a subset of them.
[ ${#kernels[@]} -gt 0 ] || kernels=(debian-5.10 debian-6.1 debian-6.12)

status=0
for k in "${kernels[@]}"; do
  dir=$CACHE/$k
  [ -s "$dir/vmlinuz" ] || { echo "not ok - $k: not fetched"; status=1; continue; }
  share=$(mktemp -d /tmp/pktpath-guest.XXXXXX)
  trap 'rm -rf "$share"' EXIT
  cat > "$share/guest.env" <<ENV
KERNEL_VERSION=$(cat "$dir/version")
KERNEL_DIR=$dir
KERNEL_NAME=$k
REPO=$REPO
GUEST_TESTS='${PKTPATH_GUEST_TESTS:-dist/test/kernels/*.test.js}'
GUEST_SCRIPT='${PKTPATH_GUEST_SCRIPT:-}'
ENV
  t0=$(date +%s)
  # A bound for a hung guest, not a measure: 5.10 took 1775 s on a loaded machine.
  timeout 2400 qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 2048 -smp 2 -nographic -no-reboot \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
    -append "console=ttyS0 panic=-1 quiet pktpath.init=$REPO/test/kernels/guest-init.sh" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$share,mount_tag=results,security_model=none" > "$share/qemu.log" 2>&1 || true
  echo "# $k: $(head -n1 "$share/console.log" 2>/dev/null || echo 'no console') — whole boot and run $(( $(date +%s) - t0 )) s"
  if [ -n "${PKTPATH_GUEST_SCRIPT:-}" ]; then
    cat "$share/console.log" 2>/dev/null || true
    [ "$(cat "$share/exit" 2>/dev/null)" = 0 ] || { echo "# $k: the guest's script failed"; status=1; }
  elif [ ! -s "$share/result.tap" ]; then
    echo "not ok - $k: the guest reported nothing"
    cat "$share/console.log" "$share/qemu.log" 2>/dev/null | sed 's/^/# /' | tail -n 40 || true
    status=1
  else
    cat "$share/result.tap"
    grep -q '^# fail 0' "$share/result.tap" || { status=1; sed 's/^/# /' "$share/console.log" | tail -n 40 || true; }
  fi
  rm -rf "$share"
  trap - EXIT
done
exit $status
