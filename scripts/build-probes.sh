#!/usr/bin/env bash
# Builds the eBPF probes (CO-RE) against the running kernel's BTF.
set -euo pipefail
cd "$(dirname "$0")/.."
out=probes/build
mkdir -p "$out"
CLANG=${CLANG:-clang-19}
if [ ! -s "$out/vmlinux.h" ]; then
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi
# pktpath's probes, and the foreign programs of the demo and tests (fixtures/datapath: what a CNI would load).
for src in probes/*.bpf.c fixtures/datapath/*.bpf.c; do
  obj="$out/$(basename "${src%.c}").o"
  if [ ! -e "$obj" ] || [ -n "$(find "$src" probes/include -newer "$obj" 2>/dev/null | head -n1)" ]; then
    "$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
      -I"$out" -Iprobes -c "$src" -o "$obj"
  fi
done
