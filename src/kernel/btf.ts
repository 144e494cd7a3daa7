/**
 * What pktpath asks of the running kernel's BTF: where each tracepoint puts
 * its arguments, which functions take an skb, what the drop reasons are
 * called. The reader itself is src/bpf/btf.
 */
import { type Btf, BtfKind } from '../bpf/btf/btf.js';
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { spellType } from '../bpf/btf/spell.js';

/** One argument of a tracepoint, as BTF describes it (without the leading context pointer). */
export interface TracepointArg {
  /** Position among the tracepoint's own arguments. */
  index: number;
  typeId: number;
  typeName: string;
}

/** Every `btf_trace_<name>` typedef of a BTF, by name: a plan asks for a dozen or more. */
const traceTypedefs = new WeakMap<Btf, Map<string, number[]>>();

/** Id of the FUNC_PROTO behind `btf_trace_<name>`, or null. */
export function tracepointProtoId(btf: Btf, name: string): number | null {
  let typedefs = traceTypedefs.get(btf);
  if (typedefs === undefined) traceTypedefs.set(btf, (typedefs = btf.namedWithPrefix('btf_trace_', 'TYPEDEF')));
  for (const td of typedefs.get(`btf_trace_${name}`) ?? []) {
    const ptr = btf.resolve(td);
    if (btf.kindOf(ptr) !== BtfKind.PTR) continue;
    const proto = btf.resolve(btf.refType(ptr));
    if (btf.kindOf(proto) === BtfKind.FUNC_PROTO) return proto;
  }
  return null;
}

/**
 * Arguments of tracepoint `name`, from its `btf_trace_<name>` typedef, without
 * the leading context pointer. Null when the kernel has no such tracepoint.
 */
export function tracepointProto(btf: Btf, name: string): TracepointArg[] | null {
  const proto = tracepointProtoId(btf, name);
  if (proto === null) return null;
  const params = btf.typeAs(proto, 'FUNC_PROTO').params;
  return params.slice(1).map((p, index) => ({ index, typeId: p.type, typeName: spellType(btf, p.type) }));
}

export interface FunctionArgMatch {
  name: string;
  id: number;
  /** 1-based argument position. */
  position: number;
}

/**
 * FUNCs taking a `struct <structName> *` (through any typedefs and qualifiers)
 * among their first `maxArgs` arguments; the first such position is reported.
 * Walks every FUNC of the blob without decoding them (vmlinux has ~60k).
 */
export function functionsTakingPointerTo(btf: Btf, structName: string, maxArgs = 5): FunctionArgMatch[] {
  const out: FunctionArgMatch[] = [];
  const matches = new Map<number, boolean>();
  const isTarget = (typeId: number): boolean => {
    let hit = matches.get(typeId);
    if (hit === undefined) {
      const ptr = btf.resolve(typeId);
      hit = false;
      if (btf.kindOf(ptr) === BtfKind.PTR) {
        const target = btf.resolve(btf.refType(ptr));
        const k = btf.kindOf(target);
        hit = (k === BtfKind.STRUCT || (k === BtfKind.FWD && !btf.fwdIsUnion(target))) && btf.nameOf(target) === structName;
      }
      matches.set(typeId, hit);
    }
    return hit;
  };
  for (const id of btf.idsOfKind('FUNC')) {
    const proto = btf.resolve(btf.refType(id));
    if (btf.kindOf(proto) !== BtfKind.FUNC_PROTO) continue;
    const n = Math.min(btf.vlen(proto), maxArgs);
    for (let j = 0; j < n; j++) {
      const type = btf.paramType(proto, j);
      if (type !== 0 && isTarget(type)) {
        out.push({ name: btf.nameOf(id), id, position: j + 1 });
        break;
      }
    }
  }
  return out;
}

/** skb_drop_reason value → name without its SKB_DROP_REASON_ prefix. */
export function dropReasonNames(btf: Btf | null = vmlinuxBtf()): Map<number, string> {
  const out = new Map<number, string>();
  const values = btf?.enumValues('skb_drop_reason');
  if (values) for (const [v, name] of values) out.set(v, name.replace(/^SKB_DROP_REASON_/, ''));
  return out;
}

/** The kernel's own bpf_redirect_info flags (net/core/filter.c): they moved between versions (bits 1-2, later 16-17), so they are read from BTF. */
export interface RedirectFlags {
  neigh: number;
  peer: number;
}

export function redirectFlags(btf: Btf | null = vmlinuxBtf()): RedirectFlags {
  return { neigh: btf?.enumeratorValue('BPF_F_NEIGH') ?? 1 << 1, peer: btf?.enumeratorValue('BPF_F_PEER') ?? 1 << 2 };
}
