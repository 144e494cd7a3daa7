/**
 * Netlink: the kernel's own interface to its network configuration (rtnetlink
 * for links and tc, nfnetlink for nftables). A socket belongs to the
 * namespace of the thread that opened it, so open one inside withNetns() to
 * talk to that namespace. Messages are built and parsed here, in TS; the
 * socket calls are libc's (src/bpf/native/libc.ts).
 */
import { errnoName } from '../bpf/errors.js';
import { c, errno } from '../bpf/native/libc.js';

export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const MSG_DONTWAIT = 0x40;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_CREATE = 0x400;
export const NLM_F_EXCL = 0x200;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const HDR = 16;
const NLA_TYPE_MASK = 0x3fff;
export const NLA_F_NESTED = 0x8000;

const align4 = (n: number) => (n + 3) & ~3;

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** What follows the header. */
  payload: Buffer;
}

export class NetlinkError extends Error {
  override name = 'NetlinkError';
  /** `errno`: positive. */
  constructor(readonly what: string, readonly errno: number) {
    super(`${what}: ${errnoName(errno)}`);
  }
}

/** One message: header and payload (the payload padded to 4). */
export function message(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const len = HDR + payload.length;
  const b = Buffer.alloc(align4(len));
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(0, 12);
  payload.copy(b, HDR);
  return b;
}

/** An attribute: length, type, data padded to 4. */
export function attr(type: number, data: Buffer): Buffer {
  const b = Buffer.alloc(align4(4 + data.length));
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

export const attrString = (type: number, s: string) => attr(type, Buffer.from(`${s}\0`));
export const attrU32 = (type: number, n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return attr(type, b);
};
/** nftables' attributes are in network byte order. */
export const attrU32BE = (type: number, n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return attr(type, b);
};
export const nested = (type: number, ...attrs: Buffer[]) => attr(type | NLA_F_NESTED, Buffer.concat(attrs));

/** Attributes in `b` from `at`: the last of each type (flags masked off). */
export function attrs(b: Buffer, at = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const [type, data] of attrList(b, at)) out.set(type, data);
  return out;
}

/** Attributes in order, repeated types kept (lists). */
export function attrList(b: Buffer, at = 0): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  while (at + 4 <= b.length) {
    const len = b.readUInt16LE(at);
    if (len < 4 || at + len > b.length) break;
    out.push([b.readUInt16LE(at + 2) & NLA_TYPE_MASK, b.subarray(at + 4, at + len)]);
    at += align4(len);
  }
  return out;
}

export const attrStr = (v: Buffer | undefined): string | undefined => {
  if (v === undefined) return undefined;
  const end = v.indexOf(0);
  return v.toString('utf8', 0, end < 0 ? v.length : end);
};

function parseMessages(b: Buffer, n: number): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let at = 0;
  while (at + HDR <= n) {
    const len = b.readUInt32LE(at);
    if (len < HDR || at + len > n) break;
    out.push({ type: b.readUInt16LE(at + 4), flags: b.readUInt16LE(at + 6), seq: b.readUInt32LE(at + 8), payload: Buffer.from(b.subarray(at + HDR, at + len)) });
    at += align4(len);
  }
  return out;
}

const RECV_SIZE = 1 << 18;

export class NetlinkSocket {
  private seq = 1;
  private readonly buf = Buffer.alloc(RECV_SIZE);

  private constructor(private fd: number, readonly protocol: number) {}

  /** A socket in the calling thread's namespace, joined to multicast `groups` (numbers, for monitors). */
  static open(protocol: number, groups: number[] = []): NetlinkSocket {
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) throw new NetlinkError(`opening a netlink socket (protocol ${protocol})`, errno());
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0);
    if (c.bind(fd, addr, addr.length) < 0) {
      const e = errno();
      c.close(fd);
      throw new NetlinkError('binding a netlink socket', e);
    }
    const sock = new NetlinkSocket(fd, protocol);
    for (const g of groups) {
      const v = Buffer.alloc(4);
      v.writeUInt32LE(g);
      if (c.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, v, 4) < 0) {
        const e = errno();
        sock.close();
        throw new NetlinkError(`joining netlink group ${g}`, e);
      }
    }
    return sock;
  }

  /**
   * Sends one request and reads its answer: every message of a dump until
   * its end, or the acknowledgement. A negative errno in the answer throws.
   */
  request(type: number, flags: number, payload: Buffer, what: string): NetlinkMessage[] {
    return this.transaction([{ type, flags, payload }], what);
  }

  /** Several messages sent at once (nftables batches), then every answer to them. */
  transaction(msgs: Array<{ type: number; flags: number; payload: Buffer }>, what: string): NetlinkMessage[] {
    const first = this.seq;
    const out = Buffer.concat(msgs.map((m) => message(m.type, m.flags | NLM_F_REQUEST, this.seq++, m.payload)));
    if (c.send(this.fd, out, out.length, 0) < 0) throw new NetlinkError(what, errno());
    const last = this.seq - 1;
    const answers: NetlinkMessage[] = [];
    const acked = new Set<number>();
    // A dump ends with NLMSG_DONE; a message sent with NLM_F_ACK is answered by NLMSG_ERROR 0.
    let dumpsOpen = msgs.filter((m) => (m.flags & NLM_F_DUMP) === NLM_F_DUMP).length;
    const acksWanted = msgs.filter((m) => (m.flags & NLM_F_ACK) !== 0).length;
    while (dumpsOpen > 0 || acked.size < acksWanted) {
      const n = c.recv(this.fd, this.buf, this.buf.length, 0);
      if (n < 0) throw new NetlinkError(what, errno());
      for (const m of parseMessages(this.buf, n)) {
        if (m.seq < first || m.seq > last) continue;
        if (m.type === NLMSG_DONE) {
          dumpsOpen--;
        } else if (m.type === NLMSG_ERROR) {
          const err = m.payload.readInt32LE(0);
          if (err < 0) throw new NetlinkError(what, -err);
          acked.add(m.seq);
        } else {
          answers.push(m);
        }
      }
    }
    return answers;
  }

  /** The messages that have arrived (monitors), without waiting. */
  poll(): NetlinkMessage[] {
    const out: NetlinkMessage[] = [];
    for (;;) {
      const n = c.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT);
      if (n <= 0) return out;
      out.push(...parseMessages(this.buf, n));
    }
  }

  close(): void {
    if (this.fd < 0) return;
    c.close(this.fd);
    this.fd = -1;
  }
}
