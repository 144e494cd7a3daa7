/**
 * The same tcpdump expressions on recorded events, in user space (`pktpath
 * show`): libpcap's own interpreter runs the program on the bytes the event
 * captured, or, when it captured none, on the headers its tuple describes
 * (addresses, protocol, ports, TCP flags), so a trace recorded without
 * packet bytes can still be narrowed to a host, a port or a SYN.
 */
import { packetFromTuple } from '../decode/ip.js';
import type { Tuple } from '../decode/tuple.js';
import { type CbpfInsn, compileL2L3, pcapVerdict } from './pcap.js';

export interface RecordedFilter {
  expression: string;
  l2: CbpfInsn[];
  /** Null when the expression needs a link-layer header (arp, ether host): no network-layer packet matches. */
  l3: CbpfInsn[] | null;
}

/** Compiles for both link types, as the live filter does (src/filter/pcap.ts): the same bounds and errors. */
export function compileRecordedFilter(expression: string): RecordedFilter {
  const { l2, l3 } = compileL2L3(expression, 'filter');
  return { expression, l2, l3 };
}

/** Whether captured bytes match (`l2`: they start at the Ethernet header). */
export function bytesMatch(f: RecordedFilter, data: Uint8Array, l2: boolean, wireLen: number): boolean {
  const program = l2 ? f.l2 : f.l3;
  return program !== null && pcapVerdict(program, data, Math.max(wireLen, data.length)) !== 0;
}

/** Whether the headers a tuple describes match. */
export function tupleMatches(f: RecordedFilter, t: Tuple): boolean {
  return f.l3 !== null && pcapVerdict(f.l3, packetFromTuple(t)) !== 0;
}
