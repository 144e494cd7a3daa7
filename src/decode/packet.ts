/** The packet section: the bytes a probe captured at its point (--output-pcap). */
import { EVENT_LAYOUT } from './layout.js';

export interface CapturedPacket {
  /** A copy: the ring's memory is reused. */
  data: Uint8Array;
  /** The packet's length from where the capture starts. */
  origLen: number;
  /** Whether the bytes start at the Ethernet header (else at the network header). */
  l2: boolean;
}

const F = EVENT_LAYOUT.fields;

/** Decodes the captured bytes of the event record at `at` (whose EVENT_HAS_PACKET flag is set). */
export function decodePacket(view: DataView, bytes: Uint8Array, at: number): CapturedPacket {
  const len = view.getUint32(at + F.cap_len, true);
  const from = at + view.getUint16(at + F.cap_offset, true);
  return {
    data: bytes.slice(from, from + len),
    origLen: view.getUint32(at + F.cap_orig_len, true),
    l2: bytes[at + F.cap_l2] !== 0,
  };
}
