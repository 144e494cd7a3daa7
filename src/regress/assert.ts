/**
 * `pktpath assert TRACE --expect FILE`: each expectation selects packets (or
 * whole connections) of the trace, counts them, and checks what each did.
 * A failure says which expectation, why, and shows the journey that came
 * nearest, with what differed.
 */
import { escapeLines, escapeText } from '../output/escape.js';
import { stylesFor } from '../output/paint.js';
import type { Endpoint, Expectation, Expectations, Match, PointPattern } from './expect.js';
import { type FlowTuple, type Hop, type Journey, RAW_JOURNEYS, directionIn, flowOf, normalizedHop, tupleText } from './journeys.js';
import { endText, hopText, journeysOf } from './normalize.js';
import { cidrContains } from './vars.js';
import type { ExplanationRecord } from './explain/inputs.js';

/** Explanations by the journey they explain (its first time and flow); absent where no expectation asks for a cause. */
export type Causes = ReadonlyMap<string, ExplanationRecord>;

export const causeKey = (time: string, flow: string) => `${time} ${flow}`;

/** What explain said of a unit: its first packet's explanation that has one. */
function causeOf(u: Unit, causes: Causes): ExplanationRecord | null {
  for (const p of u.packets) {
    const e = causes.get(causeKey(p.time, p.first ? `${p.first.proto} ${tupleText(p.first)}` : ''));
    if (e) return e;
  }
  return null;
}

export interface Result {
  name: string;
  line: number;
  ok: boolean;
  /** Why it failed, one line. */
  message: string;
  /** The nearest journey and what differed, for people. */
  details: string[];
}

/** What an expectation checks: one packet, or a connection (its packets in time order). */
interface Unit {
  /** The first packet: what `match` is held against. */
  head: Journey;
  packets: Journey[];
  hops: Hop[];
}

const onDevice = (d: NonNullable<PointPattern['device']>, h: Hop) =>
  h.node === d.node && h.iface === d.iface && (d.where === null || d.where === h.pod || d.where === h.netns);

const matchesPoint = (p: PointPattern, h: Hop) =>
  (p.point.test(h.at) && (p.netns === null || p.netns === h.netns) && (p.iface === null || p.iface === h.iface)) ||
  (p.device !== null && onDevice(p.device, h));

const endpointHolds = (e: Endpoint, addr: string, port: string) =>
  cidrContains(e.net, addr) && (e.port === null || String(e.port) === port);

/** The fields of `match` the unit fails, in words; [] when it matches. */
function mismatches(m: Match, u: Unit): string[] {
  const t = u.head.first;
  const out: string[] = [];
  if (m.proto !== undefined && t?.proto !== m.proto) out.push(`proto ${t?.proto ?? 'none'}, not ${m.proto}`);
  if (m.src !== undefined && !(t && endpointHolds(m.src, t.saddr, t.sport))) out.push(`src ${t ? `${t.saddr}:${t.sport}` : 'none'}, not ${m.src.text}`);
  if (m.dst !== undefined && !(t && endpointHolds(m.dst, t.daddr, t.dport))) out.push(`dst ${t ? `${t.daddr}:${t.dport}` : 'none'}, not ${m.dst.text}`);
  if (m.sport !== undefined && t?.sport !== String(m.sport)) out.push(`sport ${t?.sport ?? 'none'}, not ${m.sport}`);
  if (m.dport !== undefined && t?.dport !== String(m.dport)) out.push(`dport ${t?.dport ?? 'none'}, not ${m.dport}`);
  if (m.flags !== undefined) {
    const have = new Set(u.head.flags.split('|'));
    if (!m.flags.every((f) => have.has(f))) out.push(`flags ${u.head.flags || 'none'}, not ${m.flags.join('|')}`);
  }
  // All of `match` is about the first packet, in a connection too.
  if (m.passes !== undefined && !u.head.hops.some((h) => matchesPoint(m.passes!, h))) out.push(`does not pass ${m.passes.text}`);
  if (m.ends !== undefined && u.head.end.how !== m.ends) out.push(`ends ${u.head.end.how}, not ${m.ends}`);
  if (m.reason !== undefined && u.head.end.reason !== m.reason) out.push(`drop reason ${u.head.end.reason ?? 'none'}, not ${m.reason}`);
  return out;
}

/** How far a unit gets through an ordered list of points: the number passed in order. */
function passedInOrder(patterns: PointPattern[], hops: Hop[]): number {
  let k = 0;
  for (const h of hops) if (k < patterns.length && matchesPoint(patterns[k]!, h)) k++;
  return k;
}

function ctInOrder(states: string[], hops: Hop[]): number {
  let k = 0;
  for (const h of hops) if (k < states.length && h.ct === states[k]) k++;
  return k;
}

function rewrittenTo(e: Endpoint, first: FlowTuple | null, last: FlowTuple | null, side: 'dst' | 'src'): boolean {
  if (!first || !last) return false;
  const [fa, fp, la, lp] = side === 'dst' ? [first.daddr, first.dport, last.daddr, last.dport] : [first.saddr, first.sport, last.saddr, last.sport];
  return (fa !== la || fp !== lp) && endpointHolds(e, la, lp);
}

/** What the unit fails of the expectation's requirements, in words; [] when it does them all. */
function failures(x: Expectation, u: Unit, causes: Causes): string[] {
  const out: string[] = [];
  // A connection ends dropped when one of its packets was.
  const ending = u.packets.find((p) => p.end.how === 'dropped' && (x.reason === undefined || p.end.reason === x.reason))?.end ??
    u.packets.find((p) => p.end.how === 'dropped')?.end ?? u.head.end;
  if (x.passes) {
    const k = passedInOrder(x.passes, u.hops);
    if (k < x.passes.length) {
      out.push(k === 0 ? `does not pass ${x.passes[0]!.text}` : `passes ${x.passes.slice(0, k).map((p) => p.text).join(' → ')} but then not ${x.passes[k]!.text}`);
    }
  }
  for (const p of x.avoids ?? []) {
    const h = u.hops.find((hop) => matchesPoint(p, hop));
    if (h) out.push(`passes ${p.text} (${hopText(normalizedHop(h))})`);
  }
  if (x.reachesSocket !== undefined) {
    const reached = u.hops.some((h) => h.at === 'skb_copy_datagram_iovec');
    if (reached !== x.reachesSocket) out.push(reached ? 'reaches a socket' : 'reaches no socket');
  }
  if (x.ends !== undefined && ending.how !== x.ends) out.push(`ends ${endText(ending)}, not ${x.ends}`);
  if (x.reason !== undefined && ending.reason !== x.reason) out.push(`is ${ending.how === 'dropped' ? `dropped for ${ending.reason}` : endText(ending)}, not dropped for ${x.reason}`);
  if (x.ct) {
    const k = ctInOrder(x.ct, u.hops);
    if (k < x.ct.length) {
      const seen = u.hops.filter((h) => h.ct).map((h) => h.ct);
      out.push(`conntrack states ${seen.length ? seen.join(' → ') : 'none seen'}: no ${x.ct[k]} after ${k === 0 ? 'the start' : x.ct.slice(0, k).join(' → ')}`);
    }
  }
  // Rewrites as the opening side's packets get them (a reply's are the reverse).
  const forward = u.packets.filter((p) => directionIn(p, u.head.first) === '>');
  if (x.dnat && !forward.some((p) => rewrittenTo(x.dnat!, p.first, p.last, 'dst'))) {
    const rewrite = u.head.hops.find((h) => h.rewrite);
    out.push(`not DNATed to ${x.dnat.text}${rewrite ? ` (${normalizedHop(rewrite).nat})` : ''}`);
  }
  if (x.snat && !forward.some((p) => rewrittenTo(x.snat!, p.first, p.last, 'src'))) out.push(`not SNATed to ${x.snat.text}`);
  if (x.cause !== undefined) {
    const e = causeOf(u, causes);
    const have = e?.cause ?? 'none';
    if (have !== x.cause) out.push(`cause ${have}${e ? ` (${e.sentence})` : ''}, not ${x.cause}`);
  }
  return out;
}

function describe(u: Unit): string[] {
  const t = u.head.first;
  const lines = [`${t ? `${t.proto} ${tupleText(t)}` : 'not IP'}${u.head.flags ? ` ${u.head.flags}` : ''}${u.packets.length > 1 ? ` (${u.packets.length} packets)` : ''}`];
  for (const h of u.hops) lines.push(`  ${hopText(normalizedHop(h))}`);
  lines.push(`  ${endText(u.packets[u.packets.length - 1]!.end)}`);
  return lines;
}

function units(journeys: Journey[], connections: boolean): Unit[] {
  const byTime = [...journeys].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  if (!connections) return byTime.map((j) => ({ head: j, packets: [j], hops: j.hops }));
  const flows = new Map<string, Unit>();
  for (const j of byTime) {
    const key = flowOf(j).key;
    const u = flows.get(key);
    if (u) {
      u.packets.push(j);
      u.hops.push(...j.hops);
    } else {
      flows.set(key, { head: j, packets: [j], hops: [...j.hops] });
    }
  }
  return [...flows.values()];
}

export function evaluate(x: Expectation, journeys: Journey[], causes: Causes = new Map()): Result {
  const all = units(journeys, x.connection);
  const selected = all.filter((u) => mismatches(x.match, u).length === 0);
  const what = x.connection ? 'connections' : 'packets';
  const base = { name: x.name, line: x.line };
  if (selected.length < x.count.min || selected.length > x.count.max) {
    const details: string[] = [];
    if (selected.length > 0) {
      for (const u of selected.slice(0, 3)) details.push(`matched: ${describe(u)[0]}`);
    } else {
      // The nearest: the one that fails the fewest of the selection's fields.
      let best: { u: Unit; miss: string[] } | null = null;
      for (const u of all) {
        const miss = mismatches(x.match, u);
        if (best === null || miss.length < best.miss.length) best = { u, miss };
      }
      if (best) details.push(`nearest: ${describe(best.u).join('\n  ')}`, `differs: ${best.miss.join('; ')}`);
    }
    return { ...base, ok: false, message: `expected ${x.count.text} ${what} matching, found ${selected.length}`, details };
  }
  const failing = selected.map((u) => ({ u, why: failures(x, u, causes) })).filter((f) => f.why.length > 0);
  if (failing.length === 0) return { ...base, ok: true, message: `${selected.length} ${what} matched and held`, details: [] };
  const nearest = failing.reduce((a, b) => (b.why.length < a.why.length ? b : a));
  return {
    ...base,
    ok: false,
    message: `${failing.length} of ${selected.length} matching ${what} do not hold: ${nearest.why[0]}`,
    details: [`nearest: ${describe(nearest.u).join('\n  ')}`, `differs: ${nearest.why.join('; ')}`],
  };
}

/** Checks every expectation against the trace (raw values: no placeholders, neighbour traffic kept). */
export async function assertTrace(trace: string, expectations: Expectations): Promise<Result[]> {
  const journeys: Journey[] = [];
  await journeysOf(trace, RAW_JOURNEYS, (j) => journeys.push(j));
  const causes = new Map<string, ExplanationRecord>();
  if (expectations.expect.some((x) => x.cause !== undefined)) {
    const { explainFile } = await import('./explain/file.js');
    for (const e of (await explainFile(trace)).explanations) causes.set(causeKey(e.time, e.flow), e);
  }
  return expectations.expect.map((x) => evaluate(x, journeys, causes));
}

/** The results for a person; names and messages escaped (./escape.ts): they quote the trace and the expectations. */
export function formatResults(results: Result[], opts: { color: boolean }): string {
  const st = stylesFor(opts.color);
  let out = '';
  for (const r of results) {
    const name = escapeText(r.name);
    out += r.ok ? `${st.ok('✓')} ${name}\n` : `${st.drop('✗')} ${name}: ${escapeText(r.message)}\n`;
    for (const d of r.details) out += `    ${escapeLines(d).replace(/\n/g, '\n    ')}\n`;
  }
  const failed = results.filter((r) => !r.ok).length;
  out += failed === 0 ? st.ok(`all ${results.length} expectations hold\n`) : st.drop(`${failed} of ${results.length} expectations fail\n`);
  return out;
}

