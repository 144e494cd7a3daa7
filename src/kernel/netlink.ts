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
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SO_MEMINFO = 55;
/** sk_get_meminfo()'s slots (SK_MEMINFO_VARS is 9 since 4.13): the socket's drop counter is the last. */
const SK_MEMINFO_DROPS = 8;
const ENOBUFS = 105;
const EINTR = 4;

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

  /** The socket's fd, to wait on until it is readable (-1 once closed). */
  get pollFd(): number {
    return this.fd;
  }

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

  /**
   * The messages that have arrived (monitors), without waiting: the queue is
   * read until it is empty. A queue that overflowed says ENOBUFS once, and
   * drops what arrives until it has been read empty: reading goes on past
   * it, and `drops()` counts what was lost.
   */
  poll(): NetlinkMessage[] {
    const out: NetlinkMessage[] = [];
    for (;;) {
      const n = c.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT);
      if (n > 0) {
        out.push(...parseMessages(this.buf, n));
        continue;
      }
      if (n === 0) return out;
      const e = errno();
      if (e !== ENOBUFS && e !== EINTR) return out; // EAGAIN: read empty.
    }
  }

  /**
   * Messages the kernel could not queue for this socket since it opened
   * (sk_drops, read with SO_MEMINFO: the Drops column of /proc/net/netlink).
   * A multicast message that does not fit adds one, as does one dropped while
   * the socket is marked congested after an overflow; an overflow's ENOBUFS
   * itself says nothing of how many. netlink hands no SO_RXQ_OVFL count to
   * recvmsg (netlink_recvmsg never adds it), so the counter is read here.
   */
  drops(): number {
    const mem = Buffer.alloc(4 * (SK_MEMINFO_DROPS + 1));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(mem.length);
    if (c.getsockopt(this.fd, SOL_SOCKET, SO_MEMINFO, mem, len) < 0) throw new NetlinkError('reading a netlink socket\'s drop count', errno());
    if (len.readUInt32LE(0) < mem.length) throw new NetlinkError('reading a netlink socket\'s drop count (no SK_MEMINFO_DROPS)', 0);
    return mem.readUInt32LE(4 * SK_MEMINFO_DROPS);
  }

  /**
   * Makes the receive queue hold `bytes` (the kernel doubles the figure for
   * its bookkeeping; what it counts is each message's whole skb, not its
   * payload). SO_RCVBUFFORCE passes net.core.rmem_max where pktpath may
   * (CAP_NET_ADMIN); SO_RCVBUF, capped by it, otherwise.
   */
  setReceiveBuffer(bytes: number): void {
    const v = Buffer.alloc(4);
    v.writeInt32LE(bytes);
    if (c.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, v, 4) < 0 && c.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUF, v, 4) < 0) {
      throw new NetlinkError('sizing a netlink socket\'s receive queue', errno());
    }
  }

  close(): void {
    if (this.fd < 0) return;
    c.close(this.fd);
    this.fd = -1;
  }
}
