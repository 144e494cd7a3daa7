/**
 * The code a session writes into every probe it loads, each into its region
 * (probes/include/filter.h, skb_expr.h): the tcpdump expression (L2 and L3
 * variants), --filter-skb-expr, --output-skb-metadata's and --output-xdp-metadata's reads and
 * the inner-packet filters. Given whole when the probe set is made.
 */
import type { EbpfInsn } from '../bpf/insn.js';
import type { BpfProgram } from '../bpf/object.js';
import type { ProbeConfig } from '../decode/probe-config.js';
import type { CompiledFilter } from '../filter/expression.js';
import { FILTER_MAGIC, findRegion, injectRegion } from '../filter/inject.js';
import { SKB_EXPR_MAGIC, SKB_EXPR_REGION_INSNS, SKB_META_MAGIC, SKB_META_REGION_INSNS, XDP_EXPR_MAGIC, XDP_META_MAGIC } from '../filter/skb-expr.js';
import { INNER_MAGIC, INNER_REGION_INSNS, type InnerFilter } from '../filter/inner-packet.js';

export interface ProbeCode {
  /** The tcpdump expression, translated; null: none. */
  filter: CompiledFilter | null;
  /** --filter-skb-expr, compiled; null: none. */
  skbExpr: EbpfInsn[] | null;
  /** --filter-xdp-expr, compiled; null: none. */
  xdpExpr?: EbpfInsn[] | null;
  /** --output-skb-metadata, compiled: the fields every probe reads into its records; null: none. */
  skbMeta: EbpfInsn[] | null;
  /** --output-xdp-metadata, compiled: the xdp_buff fields XDP program probes read into their records; null: none. */
  xdpMeta?: EbpfInsn[] | null;
  /** The inner-packet filters (l2: the inner frame, l3: the inner packet), translated; null: neither. */
  inner: InnerFilter | null;
}

export const NO_CODE: ProbeCode = { filter: null, skbExpr: null, skbMeta: null, inner: null };

/** The configuration flags that switch the code on: each runs where it was written. */
export function codeFlags(code: ProbeCode): Pick<ProbeConfig, 'filter' | 'skbExpr' | 'xdpExpr' | 'innerL2' | 'innerL3'> {
  return {
    filter: code.filter !== null, skbExpr: code.skbExpr !== null, xdpExpr: code.xdpExpr != null,
    innerL2: code.inner?.l2 != null, innerL3: code.inner?.l3 != null,
  };
}

/** The instructions a filter needs in a region: the larger of its two variants. */
export const filterInsns = (code: ProbeCode) => (code.filter ? Math.max(code.filter.l2.ebpf.length, code.filter.l3.ebpf.length) : 0);

/**
 * Writes the code into `program` before it loads. `direct`: the build's
 * filter reads packet bytes in place (its translation for that). Regions a
 * program lacks stay unwritten: programs without an skb (XDP) have no
 * --filter-skb-expr region, and match nothing while it is set.
 */
export function writeCode(program: BpfProgram, code: ProbeCode, label: string, direct: boolean): void {
  const { filter, skbExpr, xdpExpr, skbMeta, xdpMeta, inner } = code;
  if (!filter && !skbExpr && !xdpExpr && !skbMeta && !xdpMeta && !inner) return;
  let insns = program.insns();
  // A function without an skb reports its window's skb, which was filtered where the window opened: no filter region.
  if (filter && findRegion(insns, FILTER_MAGIC.l2) >= 0) {
    insns = injectRegion(insns, FILTER_MAGIC.l2, direct ? filter.l2.direct : filter.l2.ebpf, `${label}: L2 filter`);
    insns = injectRegion(insns, FILTER_MAGIC.l3, direct ? filter.l3.direct : filter.l3.ebpf, `${label}: L3 filter`);
  }
  if (skbExpr && findRegion(insns, SKB_EXPR_MAGIC) >= 0) {
    insns = injectRegion(insns, SKB_EXPR_MAGIC, skbExpr, `${label}: --filter-skb-expr`, SKB_EXPR_REGION_INSNS);
  }
  if (xdpExpr && findRegion(insns, XDP_EXPR_MAGIC) >= 0) {
    insns = injectRegion(insns, XDP_EXPR_MAGIC, xdpExpr, `${label}: --filter-xdp-expr`, SKB_EXPR_REGION_INSNS);
  }
  if (skbMeta && findRegion(insns, SKB_META_MAGIC) >= 0) {
    insns = injectRegion(insns, SKB_META_MAGIC, skbMeta, `${label}: --output-skb-metadata`, SKB_META_REGION_INSNS);
  }
  if (xdpMeta && findRegion(insns, XDP_META_MAGIC) >= 0) {
    insns = injectRegion(insns, XDP_META_MAGIC, xdpMeta, `${label}: --output-xdp-metadata`, SKB_META_REGION_INSNS);
  }
  for (const side of ['l2', 'l3'] as const) {
    const translated = inner?.[side];
    if (translated && findRegion(insns, INNER_MAGIC[side]) >= 0) {
      insns = injectRegion(insns, INNER_MAGIC[side], translated.ebpf, `${label}: ${translated.option}`, INNER_REGION_INSNS);
    }
  }
  program.setInsns(insns);
}
