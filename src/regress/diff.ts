/**
 * `pktpath diff A B`: what changed between two normalised traces, per flow —
 * a flow or packet only on one side, a hop added or removed, another
 * conntrack state, NAT rewrite or ending — in words, and for a terminal as
 * marked lines in the spirit of `diff -u`.
 */
import { escapeStrings, jsonText } from '../output/escape.js';
import { stylesFor } from '../output/paint.js';
import { align } from './align.js';
import type { NormalizedHop as Hop, NormalizedPacket } from './journeys.js';
import { type Normalized, endText, hopText, onNode } from './normalize.js';

export type ChangeKind =
  | 'flow-removed' | 'flow-added' | 'packet-removed' | 'packet-added'
  | 'hop-removed' | 'hop-added' | 'ct' | 'nat' | 'verdict' | 'end';

export interface Change {
  kind: ChangeKind;
  flow: string;
  /** The packet, as `> tuple FLAGS`, where the change is within one. */
  packet?: string;
  /** What changed, in words. */
  what: string;
}

/** One line of a packet's side-by-side view: kept, only in A, only in B. */
interface Line {
  mark: ' ' | '-' | '+';
  text: string;
}

export interface PacketDiff {
  flow: string;
  packet: string;
  lines: Line[];
}

export interface DiffResult {
  changes: Change[];
  /** The packets that differ, line by line, for people. */
  packets: PacketDiff[];
  lost: { a: number; b: number };
}

const packetName = (p: NormalizedPacket) => `${p.dir} ${p.tuple}${p.flags ? ` ${p.flags}` : ''}`;
/** nft evaluations are hops of their own: a rule that no longer matches is a hop removed. */
const hopKey = (h: Hop) => `${h.at} ${h.node ?? ''} ${h.netns} ${h.iface}${h.nft ? ` nft ${h.nft}` : ''}`;
const where = (h: Hop) => `${h.at} in ${h.netns || 'no namespace'}${h.iface ? `/${h.iface}` : ''}${onNode(h.node)}`;

function byFlow(packets: readonly NormalizedPacket[]): Map<string, NormalizedPacket[]> {
  const m = new Map<string, NormalizedPacket[]>();
  for (const p of packets) {
    let list = m.get(p.flow);
    if (!list) m.set(p.flow, (list = []));
    list.push(p);
  }
  return m;
}

/** The changes between two packets taken as the same one. */
function diffPacket(flow: string, pa: NormalizedPacket, pb: NormalizedPacket, changes: Change[]): Line[] | null {
  const packet = packetName(pa);
  const before = changes.length;
  const lines: Line[] = [];
  const pairs = align(pa.hops, pb.hops, hopKey);
  let i = 0;
  let j = 0;
  const removed = (h: Hop) => {
    changes.push({ kind: 'hop-removed', flow, packet, what: `no longer passes ${where(h)}` });
    lines.push({ mark: '-', text: hopText(h) });
  };
  const added = (h: Hop) => {
    changes.push({ kind: 'hop-added', flow, packet, what: `now passes ${where(h)}` });
    lines.push({ mark: '+', text: hopText(h) });
  };
  for (const [ia, ib] of [...pairs, [pa.hops.length, pb.hops.length] as [number, number]]) {
    while (i < ia) removed(pa.hops[i++]!);
    while (j < ib) added(pb.hops[j++]!);
    if (ia === pa.hops.length) break;
    const ha = pa.hops[ia]!;
    const hb = pb.hops[ib]!;
    if ((ha.ct ?? '') !== (hb.ct ?? '')) {
      changes.push({ kind: 'ct', flow, packet, what: `conntrack at ${where(ha)}: ${ha.ct ?? 'not seen'} → ${hb.ct ?? 'not seen'}` });
    }
    if ((ha.nat ?? '') !== (hb.nat ?? '')) {
      changes.push({ kind: 'nat', flow, packet, what: `rewrite at ${where(ha)}: ${ha.nat ?? 'none'} → ${hb.nat ?? 'none'}` });
    }
    if ((ha.verdict ?? '') !== (hb.verdict ?? '')) {
      changes.push({ kind: 'verdict', flow, packet, what: `verdict at ${where(ha)}: ${ha.verdict ?? 'none'} → ${hb.verdict ?? 'none'}` });
    }
    if (hopText(ha) === hopText(hb)) lines.push({ mark: ' ', text: hopText(ha) });
    else lines.push({ mark: '-', text: hopText(ha) }, { mark: '+', text: hopText(hb) });
    i = ia + 1;
    j = ib + 1;
  }
  const ea = endText(pa.end);
  const eb = endText(pb.end);
  if (ea !== eb) {
    changes.push({ kind: 'end', flow, packet, what: `ending: ${ea} → ${eb}` });
    lines.push({ mark: '-', text: ea }, { mark: '+', text: eb });
  } else {
    lines.push({ mark: ' ', text: ea });
  }
  return changes.length > before ? lines : null;
}

/** The same kind of packet in the same direction: what can be compared hop by hop. */
const packetKey = (p: NormalizedPacket) => `${p.dir} ${p.tuple} ${p.flags}`;
/** The same path exactly. */
const pathKey = (p: NormalizedPacket) => `${packetKey(p)} ${p.hops.map((h) => `${hopKey(h)} ${h.ct ?? ''} ${h.nat ?? ''}`).join(',')} ${endText(p.end)}`;

/**
 * Pairs of paths taken as the same, in order: first the paths found
 * unchanged in both, then in each stretch between them the same kind of
 * packet in the same direction, whose hops are then compared.
 */
function pairPaths(a: NormalizedPacket[], b: NormalizedPacket[]): Array<[number, number]> {
  const same = align(a, b, pathKey);
  const pairs: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  for (const [ia, ib] of [...same, [a.length, b.length] as [number, number]]) {
    for (const [x, y] of align(a.slice(i, ia), b.slice(j, ib), packetKey)) pairs.push([i + x, j + y]);
    if (ia < a.length) pairs.push([ia, ib]);
    i = ia + 1;
    j = ib + 1;
  }
  return pairs;
}

export function diffTraces(a: Normalized, b: Normalized): DiffResult {
  const changes: Change[] = [];
  const packets: PacketDiff[] = [];
  const fa = byFlow(a.packets);
  const fb = byFlow(b.packets);
  const flows = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  const whole = (mark: '-' | '+', p: NormalizedPacket): Line[] =>
    [...p.hops.map((h) => ({ mark, text: hopText(h) })), { mark, text: endText(p.end) }];
  for (const flow of flows) {
    const pa = fa.get(flow);
    const pb = fb.get(flow);
    if (!pb) {
      changes.push({ kind: 'flow-removed', flow, what: `flow only in the first trace (${pa!.length} path${pa!.length === 1 ? '' : 's'})` });
      for (const p of pa!) packets.push({ flow, packet: packetName(p), lines: whole('-', p) });
      continue;
    }
    if (!pa) {
      changes.push({ kind: 'flow-added', flow, what: `flow only in the second trace (${pb.length} path${pb.length === 1 ? '' : 's'})` });
      for (const p of pb) packets.push({ flow, packet: packetName(p), lines: whole('+', p) });
      continue;
    }
    const pairs = pairPaths(pa, pb);
    let i = 0;
    let j = 0;
    for (const [ia, ib] of [...pairs, [pa.length, pb.length] as [number, number]]) {
      for (; i < ia; i++) {
        changes.push({ kind: 'packet-removed', flow, packet: packetName(pa[i]!), what: 'path only in the first trace' });
        packets.push({ flow, packet: packetName(pa[i]!), lines: whole('-', pa[i]!) });
      }
      for (; j < ib; j++) {
        changes.push({ kind: 'packet-added', flow, packet: packetName(pb[j]!), what: 'path only in the second trace' });
        packets.push({ flow, packet: packetName(pb[j]!), lines: whole('+', pb[j]!) });
      }
      if (ia === pa.length) break;
      const lines = diffPacket(flow, pa[ia]!, pb[ib]!, changes);
      if (lines) packets.push({ flow, packet: packetName(pa[ia]!), lines });
      i = ia + 1;
      j = ib + 1;
    }
  }
  return { changes, packets, lost: { a: a.header.lost, b: b.header.lost } };
}

/**
 * For a terminal: the differing packets with marked lines, then each change
 * in words; a piece a packet or change, written as they come (a diff can be
 * larger than one string may be).
 */
export function* formatDiff(r: DiffResult, opts: { a: string; b: string; color: boolean }): Generator<string> {
  // What it prints comes from the traces and their names: escaped (../output/escape.ts).
  r = escapeStrings(r);
  opts = escapeStrings(opts);
  const st = stylesFor(opts.color);
  const mark = { ' ': (s: string) => s, '-': st.drop, '+': st.ok };
  if (r.changes.length === 0) {
    yield `the traces are the same: ${opts.a}, ${opts.b}\n`;
  } else {
    yield st.drop(`--- ${opts.a}`) + '\n' + st.ok(`+++ ${opts.b}`) + '\n';
    let flow = '';
    for (const p of r.packets) {
      let out = '';
      if (p.flow !== flow) {
        flow = p.flow;
        out += st.header(`@@ flow ${flow}`) + '\n';
      }
      out += `  ${p.packet}\n`;
      for (const l of p.lines) out += mark[l.mark](`${l.mark}     ${l.text}`) + '\n';
      yield out;
    }
    yield st.header(`${r.changes.length} change${r.changes.length === 1 ? '' : 's'}:`) + '\n';
    for (const c of r.changes) yield `  ${c.flow}${c.packet ? ` [${c.packet}]` : ''}: ${c.what}\n`;
  }
  for (const [side, n] of [[opts.a, r.lost.a], [opts.b, r.lost.b]] as const) {
    if (n > 0) yield st.warn(`${side}: ${n} records were lost while recording; hops may be missing`) + '\n';
  }
}

/** The result as one line of JSON (`JSON.stringify(r)`), in pieces as formatDiff gives them. */
export function* diffJson(r: DiffResult): Generator<string> {
  yield '{"changes":[';
  // jsonText: JSON that keeps DEL, C1 and bidi controls from a trace as \u escapes, as every JSON output does.
  for (const [i, c] of r.changes.entries()) yield (i > 0 ? ',' : '') + jsonText(c);
  yield '],"packets":[';
  for (const [i, p] of r.packets.entries()) yield (i > 0 ? ',' : '') + jsonText(p);
  yield `],"lost":${jsonText(r.lost)}}\n`;
}
