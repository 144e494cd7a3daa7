#!/usr/bin/env bash
# Installs what pktpath needs on a fresh Debian machine (root), then builds
# what is missing or out of date. Safe to run again: it only does what is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: command → package.
declare -A NEED=(
  [clang-19]=clang-19 [llc-19]=llvm-19 [bpftool]=bpftool [ip]=iproute2 [nft]=nftables
  [iptables]=iptables [ping]=iputils-ping [tcpdump]=tcpdump [tshark]=tshark [iperf3]=iperf3 [setpriv]=util-linux
  # The pods test (test/e2e/pods.test.ts): containerd's CRI plugin.
  [containerd]=containerd
  # The image (test/e2e/image.test.ts): its Debian base, podman with runc (crun refuses hybrid cgroups).
  [mmdebstrap]=mmdebstrap [podman]=podman [runc]=runc
)
# `npm run bench` (--bench) sets bpftrace beside pktpath too.
[ "${1:-}" = --bench ] && NEED[bpftrace]=bpftrace
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${NEED[$cmd]}")
done
[ -e /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
# The pods test's node: containerd's CRI plugin runs pods on the CNI bridge (test/e2e/pods.test.ts).
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# GNU time, for the benchmarks' peak RSS (`time` alone is the shell's keyword).
[ -x /usr/bin/time ] || missing+=(time)
ldconfig -p | grep -q 'libbpf.so.1 ' || missing+=(libbpf1)
ldconfig -p | grep -q 'libpcap.so.0.8 ' || missing+=(libpcap0.8)
ldconfig -p | grep -q 'libnftables.so.1 ' || missing+=(libnftables1)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "pktpath setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "pktpath setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules/koffi ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "pktpath setup: installing npm dependencies" >&2
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi

bash scripts/build.sh
