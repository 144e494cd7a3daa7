/**
 * Which recorded events `pktpath show` passes on: the live filters, applied
 * in user space to what the trace recorded — the tcpdump expression (on the
 * captured bytes, else on the tuple's headers: src/filter/recorded.ts), the
 * namespace, device and mark, and the observation point.
 */
import { type RecordedFilter, bytesMatch, compileRecordedFilter, tupleMatches } from '../filter/recorded.js';
import type { TraceEvent } from '../output/event.js';

export interface SelectionSpec {
  /** tcpdump expression, the classic flags' included; '' for none. */
  expression: string;
  /** Names under /run/netns as the trace recorded them, or `inode:N` / N; empty for any. */
  netns: readonly string[];
  /** Pods (NAMESPACE/NAME) as the trace recorded them; with netns, an event in any of them passes. */
  pods: ReadonlyArray<{ namespace: string; name: string }>;
  ifname: string | null;
  mark: { value: number; mask: number } | null;
  func: RegExp | null;
}

export type Selection = (e: TraceEvent) => boolean;

function netnsTest(spec: string): (e: TraceEvent) => boolean {
  const inode = /^(?:inode:)?(\d+)$/.exec(spec);
  if (inode) {
    const n = Number(inode[1]);
    return (e) => e.netns === n;
  }
  const name = spec.replace(/^\/run\/netns\//, '');
  return (e) => e.netnsName === name;
}

/** Verdicts on tuples remembered: a flow's events repeat its tuple at every point. */
const TUPLE_VERDICTS = 4096;

function expressionTest(f: RecordedFilter): (e: TraceEvent) => boolean {
  const byTuple = new Map<string, boolean>();
  return (e) => {
    if (e.packet) return bytesMatch(f, e.packet.data, e.packet.l2, e.packet.origLen);
    const t = e.tuple;
    if (t === null) return false;
    const key = `${t.saddr} ${t.daddr} ${t.sport} ${t.dport} ${t.l4proto} ${t.tcpFlags}`;
    let verdict = byTuple.get(key);
    if (verdict === undefined) {
      if (byTuple.size >= TUPLE_VERDICTS) byTuple.clear();
      byTuple.set(key, (verdict = tupleMatches(f, t)));
    }
    return verdict;
  };
}

/** The selection, compiled (a bad expression throws FilterSyntaxError before any line is read). */
export function compileSelection(spec: SelectionSpec): Selection {
  const tests: Array<(e: TraceEvent) => boolean> = [];
  if (spec.func !== null) {
    const re = spec.func;
    tests.push((e) => re.test(e.func));
  }
  if (spec.netns.length > 0 || spec.pods.length > 0) {
    const where = [...spec.netns.map(netnsTest), ...spec.pods.map((p) => (e: TraceEvent) => e.pod?.namespace === p.namespace && e.pod.name === p.name)];
    tests.push((e) => where.some((t) => t(e)));
  }
  if (spec.ifname !== null) {
    const name = spec.ifname;
    tests.push((e) => e.ifname === name);
  }
  if (spec.mark !== null) {
    const { value, mask } = spec.mark;
    tests.push((e) => ((e.mark & mask) >>> 0) === value);
  }
  // Last: the other tests are cheaper than a call into libpcap.
  if (spec.expression !== '') tests.push(expressionTest(compileRecordedFilter(spec.expression)));
  return (e) => tests.every((t) => t(e));
}
