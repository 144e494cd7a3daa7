/**
 * pcapng output (`--output-pcap`): the packet bytes captured at each
 * observation point, readable by Wireshark and tshark.
 *
 * File layout (little-endian, one section):
 *   Section Header Block          shb_userappl "pktpath"
 *   Interface Description Block   one per (netns, ifindex, link type) seen, written
 *                                 just before its first packet; if_name "eth0@srv",
 *                                 if_tsresol 9 (nanoseconds), snaplen
 *   Enhanced Packet Block         one per event carrying packet bytes; opt_comment
 *                                 "nf:ipv4:local_in skb=0xffff888104870900 netns=srv",
 *                                 and " reason=NETFILTER_DROP" where it was dropped
 *
 * Link types: Ethernet (1) for bytes that start at the MAC header, raw IP (101)
 * for points where no MAC header exists yet. Every block is padded to 32 bits.
 */
import type { Writable } from 'node:stream';
import type { LostNotice, TraceEvent } from './event.js';
import { formatSkb, netnsLabel } from './format.js';
import type { Sink } from './pipeline.js';
import { BatchedWriter } from './stream.js';

export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 0x00000001;
export const BLOCK_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;

export const DEFAULT_SNAPLEN = 256;
export const MAX_SNAPLEN = 65535;

/** EPB without packet data or options: type, length, interface, ts hi/lo, caplen, origlen, trailing length. */
const EPB_FIXED = 32;
/** Comment option header and the end-of-options marker. */
const EPB_OPTS_FIXED = 8;

/** Bytes an EPB may take at most: a JS string's UTF-16 unit is at most 3 bytes of UTF-8, and each part pads by at most 3. */
function epbBound(cap: number, comment: string): number {
  return EPB_FIXED + cap + 3 + EPB_OPTS_FIXED + comment.length * 3 + 3;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** Appends one option (code, length, value padded to 32 bits) at `off`; returns the new offset. */
function putOption(buf: Buffer, off: number, code: number, value: Buffer): number {
  buf.writeUInt16LE(code, off);
  buf.writeUInt16LE(value.length, off + 2);
  value.copy(buf, off + 4);
  const end = off + 4 + pad4(value.length);
  buf.fill(0, off + 4 + value.length, end);
  return end;
}

/** A whole block of `type` around `body` (fixed fields then options), with both length fields. */
function block(type: number, body: Buffer, options: Array<[code: number, value: Buffer]>): Buffer {
  let optLen = 0;
  for (const [, v] of options) optLen += 4 + pad4(v.length);
  if (options.length > 0) optLen += 4;
  const total = 8 + body.length + optLen + 4;
  const buf = Buffer.alloc(total);
  buf.writeUInt32LE(type, 0);
  buf.writeUInt32LE(total, 4);
  body.copy(buf, 8);
  let off = 8 + body.length;
  for (const [code, v] of options) off = putOption(buf, off, code, v);
  if (options.length > 0) off = putOption(buf, off, OPT_ENDOFOPT, Buffer.alloc(0));
  buf.writeUInt32LE(total, off);
  return buf;
}

/** The Section Header Block that starts the file. */
export function sectionHeaderBlock(application = 'pktpath'): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt32LE(BYTE_ORDER_MAGIC, 0);
  body.writeUInt16LE(1, 4); // major
  body.writeUInt16LE(0, 6); // minor
  body.writeBigInt64LE(-1n, 8); // section length: not known while streaming
  return block(BLOCK_SHB, body, [[SHB_USERAPPL, Buffer.from(application)]]);
}

export interface InterfaceInfo {
  linktype: number;
  snaplen: number;
  /** if_name, e.g. `eth0@srv`. */
  name: string;
  /** if_description, e.g. `ifindex 3 in netns 4026532449`. */
  description: string;
}

/** An Interface Description Block with nanosecond timestamps. */
export function interfaceDescriptionBlock(i: InterfaceInfo): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16LE(i.linktype, 0);
  body.writeUInt32LE(i.snaplen, 4);
  return block(BLOCK_IDB, body, [
    [IF_NAME, Buffer.from(i.name)],
    [IF_DESCRIPTION, Buffer.from(i.description)],
    [IF_TSRESOL, Buffer.from([9])],
  ]);
}

/**
 * `buf.write(s, off, 'utf8')`, with a plain loop for ASCII: comments are short
 * ASCII strings, for which Buffer#write's argument handling costs more than the copy.
 */
function writeUtf8(buf: Buffer, s: string, off: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return buf.write(s, off, 'utf8');
    buf[off + i] = c;
  }
  return n;
}

/** The comment of a packet: where it was seen, which skb, which namespace, and why it was dropped. */
export function packetComment(e: TraceEvent): string {
  let s = e.func + ' skb=' + formatSkb(e.skb) + ' netns=' + netnsLabel(e);
  if (e.node !== undefined) s += ' node=' + e.node;
  if (e.dropReason !== null) s += ' reason=' + e.dropReason;
  return s;
}

export interface PcapngEncoderOptions {
  /** Bytes of each packet kept at most (1..65535). */
  snaplen: number;
}

/**
 * Turns events into pcapng blocks, tracking which interfaces have been
 * described. Pure: it writes into buffers it is given and keeps no I/O.
 */
export class PcapngEncoder {
  readonly snaplen: number;
  /** Interface ids per netns (per node and netns in a merged trace), then per (ifindex << 1 | l2). */
  private readonly ifaces = new Map<number | string, Map<number, number>>();
  private nextId = 0;
  // Runs of packets on one interface are the common case: skip the maps for them.
  private lastNetns: number | string = -1;
  private lastKey = -1;
  private lastId = -1;
  // DataView writes are cheaper than Buffer's checked writeUInt32LE; one view per buffer.
  private view: DataView | null = null;

  constructor(opts: PcapngEncoderOptions) {
    if (!Number.isInteger(opts.snaplen) || opts.snaplen < 1 || opts.snaplen > MAX_SNAPLEN) {
      throw new RangeError(`snaplen ${opts.snaplen} is out of range (1-${MAX_SNAPLEN})`);
    }
    this.snaplen = opts.snaplen;
  }

  /** Interfaces described so far. */
  get interfaceCount(): number {
    return this.nextId;
  }

  /**
   * Bytes encodeInto may need for `e` at most (an IDB included); 0 when the
   * event carries no packet.
   */
  maxEncodedSize(e: TraceEvent): number {
    const p = e.packet;
    if (p == null) return 0;
    const cap = Math.min(p.data.length, this.snaplen);
    // An IDB is its two names and under 200 bytes more.
    const idb = 200 + (e.ifname.length + e.netnsName.length + (e.node?.length ?? 0) * 2) * 3;
    return idb + epbBound(cap, packetComment(e));
  }

  /**
   * Writes the blocks for `e` (its interface's IDB first if it is new, then
   * an EPB) into `buf` from `off`. Returns the offset after them; `off` itself
   * when `e` has no packet; -1 when they might not fit before `buf.length`,
   * in which case nothing was written or recorded (maxEncodedSize(e) bytes
   * are always enough).
   */
  encodeInto(e: TraceEvent, buf: Buffer, off: number): number {
    const p = e.packet;
    if (p == null) return off;
    const data = p.data;
    const cap = data.length < this.snaplen ? data.length : this.snaplen;
    const comment = packetComment(e);
    const room = buf.length - off;
    const epbMax = epbBound(cap, comment);
    if (room < epbMax) return -1;

    let id = this.lastId;
    const key = e.ifindex * 2 + (p.l2 ? 1 : 0);
    // Two nodes' namespaces may share an inode: in a merged trace the node is part of the place.
    const place = e.node === undefined ? e.netns : `${e.node} ${e.netns}`;
    if (place !== this.lastNetns || key !== this.lastKey) {
      const known = this.ifaces.get(place)?.get(key);
      if (known === undefined) {
        const idb = this.describe(e, p.l2);
        if (room < idb.length + epbMax) return -1;
        idb.copy(buf, off);
        off += idb.length;
        id = this.register(place, key);
      } else {
        id = known;
      }
      this.lastNetns = place;
      this.lastKey = key;
      this.lastId = id;
    }

    let v = this.view;
    if (v === null || v.buffer !== buf.buffer || v.byteOffset !== buf.byteOffset || v.byteLength !== buf.byteLength) {
      v = this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const start = off;
    v.setUint32(off, BLOCK_EPB, true);
    v.setUint32(off + 8, id, true);
    // Timestamp as two 32-bit words, high first, in nanoseconds (if_tsresol 9).
    const ts = e.timeNs;
    v.setUint32(off + 12, Number(ts >> 32n) >>> 0, true);
    v.setUint32(off + 16, Number(BigInt.asUintN(32, ts)), true);
    v.setUint32(off + 20, cap, true);
    v.setUint32(off + 24, p.origLen > cap ? p.origLen : cap, true);
    off += 28;
    buf.set(cap === data.length ? data : data.subarray(0, cap), off);
    off += cap;
    while ((off & 3) !== (start & 3)) buf[off++] = 0;

    // The comment is written in place and its length filled in after.
    const n = writeUtf8(buf, comment, off + 4);
    v.setUint16(off, OPT_COMMENT, true);
    v.setUint16(off + 2, n, true);
    off += 4 + n;
    while ((off & 3) !== (start & 3)) buf[off++] = 0;
    v.setUint32(off, 0, true); // opt_endofopt
    off += 4;

    const total = off + 4 - start;
    v.setUint32(start + 4, total, true);
    v.setUint32(off, total, true);
    return off + 4;
  }

  private register(netns: number | string, key: number): number {
    let byIf = this.ifaces.get(netns);
    if (byIf === undefined) {
      byIf = new Map();
      this.ifaces.set(netns, byIf);
    }
    const id = this.nextId++;
    byIf.set(key, id);
    return id;
  }

  /** The IDB of the event's interface. */
  private describe(e: TraceEvent, l2: boolean): Buffer {
    const ns = netnsLabel(e);
    return interfaceDescriptionBlock({
      linktype: l2 ? LINKTYPE_ETHERNET : LINKTYPE_RAW,
      snaplen: this.snaplen,
      name: (e.node !== undefined ? e.node + ':' : '') + (e.ifname !== '' ? e.ifname : 'if' + e.ifindex) + '@' + ns,
      description: `ifindex ${e.ifindex} in netns ${e.netns}` + (e.node !== undefined ? ` on node ${e.node}` : '') +
        (l2 ? '' : ', from the network header'),
    });
  }
}

/** A whole pcapng file for `events`, in memory (tests, small tools). */
export function buildPcapng(events: Iterable<TraceEvent>, opts: PcapngEncoderOptions): Buffer {
  const enc = new PcapngEncoder(opts);
  const parts: Buffer[] = [sectionHeaderBlock()];
  for (const e of events) {
    const size = enc.maxEncodedSize(e);
    if (size === 0) continue;
    const buf = Buffer.allocUnsafe(size);
    parts.push(buf.subarray(0, enc.encodeInto(e, buf, 0)));
  }
  return Buffer.concat(parts);
}

export interface PcapngSinkOptions extends PcapngEncoderOptions {
  /** Bytes gathered before a write. Default 256 KiB. */
  chunkSize?: number;
  /** A non-empty chunk is written after at most this long. Default 100 ms; 0 turns it off. */
  maxDelayMs?: number;
  /** Called once when writing fails; the sink stops, and close() rejects (but when the reader went away: EPIPE). */
  onError?: (err: Error) => void;
}

/**
 * Writes events with packet bytes as pcapng to a stream. Blocks are encoded
 * in place into the batches of a BatchedWriter: one write per packet would
 * cost more than the encoding.
 */
export class PcapngSink implements Sink {
  private readonly enc: PcapngEncoder;
  private readonly out: BatchedWriter;
  private packetCount = 0;
  private skippedCount = 0;
  private closed = false;

  constructor(dest: Writable, opts: PcapngSinkOptions) {
    this.enc = new PcapngEncoder(opts);
    const onError = opts.onError;
    this.out = new BatchedWriter(dest, {
      batchSize: opts.chunkSize ?? 256 * 1024,
      maxDelayMs: opts.maxDelayMs ?? 100,
      isTTY: false,
      end: true,
      ...(onError ? { onError, onClosed: () => onError(new Error('its reader went away')) } : {}),
    });
    this.out.writeBytes(sectionHeaderBlock());
  }

  /** Packets written. */
  get packets(): number {
    return this.packetCount;
  }

  /** Events that carried no packet bytes (capture off at that point). */
  get skipped(): number {
    return this.skippedCount;
  }

  event(e: TraceEvent): void {
    const out = this.out;
    if (this.closed || out.closed) return;
    if (e.packet == null) {
      this.skippedCount++;
      return;
    }
    let next = this.enc.encodeInto(e, out.buffer(0), out.length);
    if (next < 0) {
      // The batch is full: write it out, and take one with room for this packet.
      out.flush();
      next = this.enc.encodeInto(e, out.buffer(this.enc.maxEncodedSize(e)), out.length);
    }
    out.commit(next);
    this.packetCount++;
  }

  /** Lost records carry no packets; the text and JSON outputs report them. */
  lost(_notice: LostNotice): void {}

  /** Writes out what has been encoded so far. */
  flush(): void {
    this.out.flush();
  }

  close(): Promise<void> {
    this.closed = true;
    return this.out.close();
  }
}
