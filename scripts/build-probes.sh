#!/usr/bin/env bash
# Builds the eBPF probes (CO-RE) against the running kernel's BTF.
set -euo pipefail
cd "$(dirname "$0")/.."
out=probes/build
mkdir -p "$out"
CLANG=${CLANG:-clang-19}
STRIP=${STRIP:-llvm-strip-19}
if [ ! -s "$out/vmlinux.h" ]; then
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi

# build SRC OBJ [CFLAGS...]: only when the source or a header is newer than the object.
build() {
  local src=$1 obj=$2
  shift 2
  if [ ! -e "$obj" ] || [ -n "$(find "$src" probes/include -newer "$obj" 2>/dev/null | head -n1)" ]; then
    "$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I"$out" -Iprobes "$@" -c "$src" -o "$obj"
    # -g is for BTF (CO-RE relocations, line info): the DWARF beside it is read by nothing and was
    # half of each object, and of the package that ships them.
    "$STRIP" -g "$obj"
  fi
}

# pktpath's probes, and the foreign programs of the demo and tests (fixtures/datapath: what a CNI would load).
for src in probes/*.bpf.c fixtures/datapath/*.bpf.c; do
  case $src in probes/tracepoint.bpf.c) continue ;; esac
  build "$src" "$out/$(basename "${src%.c}").o"
done
# Tracepoints: filter regions of 1024 instructions (faster to verify, 17 times over), and of 4096 for filters
# that need more (probes/include/filter.h); before bpf_rdonly_cast (6.2) each without it (probes/include/kread.h).
NARROW=-DFILTER_REGION_INSNS=1024
build probes/tracepoint.bpf.c "$out/tracepoint.bpf.o" $NARROW
build probes/tracepoint.bpf.c "$out/tracepoint_nocast.bpf.o" $NARROW -DPKTPATH_NO_RDONLY_CAST
build probes/tracepoint.bpf.c "$out/tracepoint_wide.bpf.o"
build probes/tracepoint.bpf.c "$out/tracepoint_wide_nocast.bpf.o" -DPKTPATH_NO_RDONLY_CAST
# The tc observer for kernels that refuse parts of it (probes/tc.bpf.c says which).
build probes/tc.bpf.c "$out/tc_noct.bpf.o" -DPKTPATH_NO_CT_LOOKUP
build probes/tc.bpf.c "$out/tc_untyped.bpf.o" -DPKTPATH_UNTYPED
# Function probes before bpf_get_func_ip (5.15): the function from the probe's address (kprobes) or its point (fentry).
build probes/kprobe.bpf.c "$out/kprobe_nofuncip.bpf.o" -DPKTPATH_NO_FUNC_IP
build probes/fentry.bpf.c "$out/fentry_nofuncip.bpf.o" -DPKTPATH_NO_FUNC_IP
build probes/track.bpf.c "$out/track_nofuncip.bpf.o" -DPKTPATH_NO_FUNC_IP
# Netfilter on kernels before bpf_rdonly_cast (6.2): probes/include/kread.h.
build probes/netfilter.bpf.c "$out/netfilter_nocast.bpf.o" -DPKTPATH_NO_RDONLY_CAST
# The benchmarks' floor (bench/run.ts): every probe built to return at once (PKTPATH_PROBES_DIR points at it).
mkdir -p "$out/floor"
for src in probes/*.bpf.c; do
  case $src in probes/tracepoint.bpf.c) continue ;; esac
  build "$src" "$out/floor/$(basename "${src%.c}").o" -DPKTPATH_FLOOR
done
build probes/tracepoint.bpf.c "$out/floor/tracepoint.bpf.o" -DPKTPATH_FLOOR $NARROW
build probes/tracepoint.bpf.c "$out/floor/tracepoint_nocast.bpf.o" -DPKTPATH_FLOOR $NARROW -DPKTPATH_NO_RDONLY_CAST
build probes/tracepoint.bpf.c "$out/floor/tracepoint_wide.bpf.o" -DPKTPATH_FLOOR
build probes/tracepoint.bpf.c "$out/floor/tracepoint_wide_nocast.bpf.o" -DPKTPATH_FLOOR -DPKTPATH_NO_RDONLY_CAST
build probes/tc.bpf.c "$out/floor/tc_noct.bpf.o" -DPKTPATH_FLOOR -DPKTPATH_NO_CT_LOOKUP
build probes/tc.bpf.c "$out/floor/tc_untyped.bpf.o" -DPKTPATH_FLOOR -DPKTPATH_UNTYPED
build probes/netfilter.bpf.c "$out/floor/netfilter_nocast.bpf.o" -DPKTPATH_FLOOR -DPKTPATH_NO_RDONLY_CAST
# The default plan's probes returning at a later stage (probes/include/bench.h), for the bench's breakdown.
for stage in 1 2; do
  mkdir -p "$out/stage$stage"
  build probes/tracepoint.bpf.c "$out/stage$stage/tracepoint.bpf.o" -DPKTPATH_STOP=$stage $NARROW
  build probes/tc.bpf.c "$out/stage$stage/tc.bpf.o" -DPKTPATH_STOP=$stage
  build probes/netfilter.bpf.c "$out/stage$stage/netfilter.bpf.o" -DPKTPATH_STOP=$stage
done
