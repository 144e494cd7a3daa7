/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * How a probe reads kernel structures. Tracing programs (tp_btf, fentry) and
 * tc programs with bpf_cast_to_kern_ctx get BTF-typed pointers: fields are
 * plain loads, which CO-RE relocates and the verifier guards — one
 * instruction each, which matters at millions of packets a second. kprobes,
 * and tc on kernels before bpf_cast_to_kern_ctx (6.2), get untyped addresses:
 * a probe built with PKTPATH_UNTYPED reads every field with
 * bpf_probe_read_kernel (BPF_CORE_READ), still relocated by CO-RE.
 * A chain of pointers is read one step at a time (CO-RE's relocations do not nest).
 */
#ifndef PKTPATH_KREAD_H
#define PKTPATH_KREAD_H

#ifdef PKTPATH_UNTYPED
#define KREAD(p, field) BPF_CORE_READ(p, field)
#define KREAD_BITFIELD(p, field) BPF_CORE_READ_BITFIELD_PROBED(p, field)
#else
#define KREAD(p, field) ((p)->field)
#define KREAD_BITFIELD(p, field) BPF_CORE_READ_BITFIELD(p, field)
#endif

#endif
