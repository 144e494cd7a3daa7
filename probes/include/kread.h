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

/*
 * KREAD_PTR: a field that points to a struct (skb->dev, skb->sk, dev->nd_net).
 * Loaded from a pointer the verifier trusts (a tp_btf argument, a tc or
 * netfilter context's sk_buff), each such load makes it search the kernel's
 * BTF by name for an allow-list entry (the field trusted, trusted or null,
 * RCU, RCU or null: up to four scans of ~150k types each on 6.18; measured,
 * ~200 ms of verification over the default plan's programs). Loaded through
 * an alias it does not trust (bpf_rdonly_cast, 6.2+; the verifier makes it a
 * register move) there is nothing to search, and the pointer loaded is what
 * it is anyway: one the verifier does not trust, read with faulting loads.
 * Probes opt in with PKTPATH_RDONLY_CAST (the kfunc is an extern of the whole
 * object); builds for older kernels add PKTPATH_NO_RDONLY_CAST.
 */
#if defined(PKTPATH_UNTYPED) || !defined(PKTPATH_RDONLY_CAST) || defined(PKTPATH_NO_RDONLY_CAST)
#define KREAD_PTR(p, field) KREAD(p, field)
#else
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define KREAD_PTR(p, field) \
	(((typeof(p))bpf_rdonly_cast((p), bpf_core_type_id_kernel(typeof(*(p)))))->field)
#endif

#endif
