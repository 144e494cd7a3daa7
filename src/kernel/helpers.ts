/**
 * The kernel functions a loaded BPF program's helper calls land in
 * (--filter-track-bpf-helpers): read from its translated instructions
 * (../bpf/loaded.ts), named from kallsyms, and sorted by how a probe reads
 * them from the kernel's BTF: a map operation of a map's ops (first argument
 * a struct bpf_map *) or any other helper. What the verifier inlines (array
 * map lookups, hash map lookups but for their __htab_map_lookup_elem call,
 * bpf_get_smp_processor_id, ...) is no call, and is not seen.
 */
import type { Btf } from '../bpf/btf/btf.js';
import { progHelperCalls } from '../bpf/loaded.js';
import type { Kallsyms } from './kallsyms.js';

/** How a helper's kernel function is observed (probes/bpfprog.bpf.c). */
export type HelperKind = 'helper' | 'map-update' | 'map-delete' | 'map-lookup' | 'htab-lookup';

export interface HelperCall {
  func: string;
  kind: HelperKind;
}

/** A map operation's kind from its name and BTF prototype (map, key[, value, flags]); 'helper' for the rest. */
export function helperKind(btf: Btf, func: string): HelperKind {
  const id = btf.findOne(func, 'FUNC');
  if (id === null) return 'helper';
  const proto = btf.type(btf.resolve(btf.refType(id)));
  if (proto.kind !== 'FUNC_PROTO' || proto.params.length < 2) return 'helper';
  const first = btf.type(btf.resolve(proto.params[0]!.type));
  const target = first.kind === 'PTR' ? btf.type(btf.resolve(first.type)) : null;
  if (target?.kind !== 'STRUCT' || target.name !== 'bpf_map') return 'helper';
  if (func === '__htab_map_lookup_elem') return 'htab-lookup';
  if (/_lookup_elem$/.test(func) && proto.params.length === 2 && btf.type(btf.resolve(proto.ret)).kind === 'PTR') return 'map-lookup';
  if (/_update_elem$/.test(func) && proto.params.length >= 3) return 'map-update';
  if (/_delete_elem$/.test(func)) return 'map-delete';
  return 'helper';
}

/**
 * The helper calls of program `id`, each function once; null when the
 * program is gone. Throws when the kernel hides the calls' addresses (they
 * read as 0 without the right to read kernel addresses: kptr_restrict).
 */
export function programHelperCalls(id: number, symbols: Pick<Kallsyms, 'addressOf' | 'lookup'>, btf: Btf): HelperCall[] | null {
  const offsets = progHelperCalls(id);
  if (offsets === null) return null;
  const base = symbols.addressOf('__bpf_call_base');
  if (base === null) throw new Error('/proc/kallsyms does not name __bpf_call_base (kernel addresses hidden: kptr_restrict)');
  const out = new Map<string, HelperCall>();
  for (const off of offsets) {
    const hit = symbols.lookup(base + BigInt(off));
    if (hit === null || hit.offset !== 0) continue;
    if (!out.has(hit.name)) out.set(hit.name, { func: hit.name, kind: helperKind(btf, hit.name) });
  }
  return [...out.values()];
}
