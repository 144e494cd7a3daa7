import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  BLOCK_EPB,
  BLOCK_IDB,
  BLOCK_SHB,
  BYTE_ORDER_MAGIC,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  PcapngSink,
  buildPcapng,
  packetComment,
} from '../../src/output/pcapng.js';
import type { TraceEvent } from '../../src/output/event.js';

// ---------------------------------------------------------------------------
// Real packets

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4(proto: number, src: number[], dst: number[], payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(0x1234, 4);
  h[8] = 64;
  h[9] = proto;
  h.set(src, 12);
  h.set(dst, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, payload]);
}

function icmpEchoRequest(): Buffer {
  const m = Buffer.alloc(8 + 32, 0x61);
  m[0] = 8;
  m[1] = 0;
  m.writeUInt16BE(0, 2);
  m.writeUInt16BE(0x0042, 4);
  m.writeUInt16BE(1, 6);
  m.writeUInt16BE(checksum(m), 2);
  return m;
}

function ethernet(payload: Buffer): Buffer {
  const h = Buffer.from([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
  return Buffer.concat([h, payload]);
}

function udp(sport: number, dport: number, data: Buffer): Buffer {
  const u = Buffer.alloc(8);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(8 + data.length, 4);
  return Buffer.concat([u, data]); // checksum 0: none, valid for IPv4
}

const PING = ethernet(ipv4(1, [192, 0, 2, 1], [192, 0, 2, 2], icmpEchoRequest()));
const DNS = ipv4(17, [198, 51, 100, 7], [203, 0, 113, 53], udp(5353, 53, Buffer.from('hello, resolver')));
const BIG = ethernet(ipv4(17, [192, 0, 2, 1], [192, 0, 2, 9], udp(1000, 2000, Buffer.alloc(400, 0x7a))));

function ev(over: Partial<TraceEvent>): TraceEvent {
  return {
    timeNs: 1795757400123456789n,
    sinceStartNs: 0n,
    skb: 0xffff888104870900n,
    cpu: 1,
    pid: 4242,
    comm: 'ping',
    netns: 4026531840,
    netnsName: '',
    mark: 0,
    ifindex: 7,
    ifname: 'veth-a',
    protocol: 0x0800,
    mtu: 1500,
    len: PING.length,
    tuple: null,
    func: 'net_dev_queue',
    probe: { type: 'tracepoint', name: 'net_dev_queue' },
    dropReason: null,
    caller: null,
    stack: null,
    ...over,
  };
}

const EVENTS: TraceEvent[] = [
  ev({ packet: { data: PING, origLen: PING.length, l2: true } }),
  // Same interface again: no new IDB.
  ev({ timeNs: 1795757400123460000n, func: 'net_dev_xmit', packet: { data: PING, origLen: PING.length, l2: true } }),
  // No packet bytes at this point: skipped.
  ev({ timeNs: 1795757400123461000n, func: 'tc:ingress' }),
  ev({
    timeNs: 1795757400123470000n, skb: 0xffff888006b1c700n, netns: 4026532449, netnsName: 'b', ifindex: 3, ifname: 'eth0',
    func: 'nf:ipv4:local_in', probe: { type: 'netfilter', name: 'nf_local_in' },
    packet: { data: DNS, origLen: DNS.length, l2: false },
  }),
  // Longer than the snaplen: cut, original length kept.
  ev({
    timeNs: 1795757401000000001n, skb: 0xffff888006b1d800n, func: 'kfree_skb', dropReason: 'NETFILTER_DROP',
    packet: { data: BIG, origLen: BIG.length + 1000, l2: true },
  }),
];

const SNAPLEN = 256;

// ---------------------------------------------------------------------------
// Structure

interface Block {
  type: number;
  length: number;
  body: Buffer;
}

function blocks(file: Buffer): Block[] {
  const out: Block[] = [];
  let off = 0;
  while (off < file.length) {
    const type = file.readUInt32LE(off);
    const length = file.readUInt32LE(off + 4);
    assert.equal(length % 4, 0, `block at ${off} is padded to 32 bits`);
    assert.ok(length >= 12 && off + length <= file.length, `block at ${off} fits`);
    assert.equal(file.readUInt32LE(off + length - 4), length, `block at ${off} repeats its length`);
    out.push({ type, length, body: file.subarray(off + 8, off + length - 4) });
    off += length;
  }
  assert.equal(off, file.length);
  return out;
}

/** Options from `off` in a block body to the end-of-options marker, as code → values. */
function options(body: Buffer, off: number): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  for (;;) {
    const code = body.readUInt16LE(off);
    const len = body.readUInt16LE(off + 2);
    if (code === 0) {
      assert.equal(len, 0);
      assert.equal(off + 4, body.length, 'end of options ends the block');
      return out;
    }
    const value = body.subarray(off + 4, off + 4 + len);
    const padEnd = off + 4 + ((len + 3) & ~3);
    assert.ok(body.subarray(off + 4 + len, padEnd).every((b) => b === 0), 'option padding is zero');
    out.set(code, [...(out.get(code) ?? []), value]);
    off = padEnd;
  }
}

test('blocks: SHB, one IDB per interface and link type, EPBs with comments', () => {
  const file = buildPcapng(EVENTS, { snaplen: SNAPLEN });
  const bs = blocks(file);
  assert.deepEqual(bs.map((b) => b.type), [BLOCK_SHB, BLOCK_IDB, BLOCK_EPB, BLOCK_EPB, BLOCK_IDB, BLOCK_EPB, BLOCK_EPB]);

  const shb = bs[0]!.body;
  assert.equal(shb.readUInt32LE(0), BYTE_ORDER_MAGIC);
  assert.deepEqual(file.subarray(8, 12), Buffer.from([0x4d, 0x3c, 0x2b, 0x1a]));
  assert.equal(shb.readUInt16LE(4), 1);
  assert.equal(shb.readUInt16LE(6), 0);
  assert.equal(shb.readBigInt64LE(8), -1n);
  assert.equal(options(shb, 16).get(4)![0]!.toString(), 'pktpath');

  const idb1 = bs[1]!.body;
  assert.equal(idb1.readUInt16LE(0), LINKTYPE_ETHERNET);
  assert.equal(idb1.readUInt32LE(4), SNAPLEN);
  const o1 = options(idb1, 8);
  assert.equal(o1.get(2)![0]!.toString(), 'veth-a@4026531840');
  assert.deepEqual([...o1.get(9)![0]!], [9]);
  const idb2 = bs[4]!.body;
  assert.equal(idb2.readUInt16LE(0), LINKTYPE_RAW);
  assert.equal(options(idb2, 8).get(2)![0]!.toString(), 'eth0@b');

  const epb = (i: number) => {
    const b = bs[i]!.body;
    const cap = b.readUInt32LE(12);
    return {
      iface: b.readUInt32LE(0),
      ts: (BigInt(b.readUInt32LE(4)) << 32n) | BigInt(b.readUInt32LE(8)),
      cap,
      orig: b.readUInt32LE(16),
      data: b.subarray(20, 20 + cap),
      comment: options(b, 20 + ((cap + 3) & ~3)).get(1)![0]!.toString(),
    };
  };
  const p0 = epb(2);
  assert.equal(p0.iface, 0);
  assert.equal(p0.ts, 1795757400123456789n);
  assert.equal(p0.cap, PING.length);
  assert.equal(p0.orig, PING.length);
  assert.deepEqual(p0.data, PING);
  assert.equal(p0.comment, 'net_dev_queue skb=0xffff888104870900 netns=4026531840');
  assert.equal(epb(3).iface, 0);
  const p2 = epb(5);
  assert.equal(p2.iface, 1);
  assert.deepEqual(p2.data, DNS);
  assert.equal(p2.comment, 'nf:ipv4:local_in skb=0xffff888006b1c700 netns=b');
  const p3 = epb(6);
  assert.equal(p3.cap, SNAPLEN);
  assert.equal(p3.orig, BIG.length + 1000);
  assert.deepEqual(p3.data, BIG.subarray(0, SNAPLEN));
  assert.equal(p3.comment, 'kfree_skb skb=0xffff888006b1d800 netns=4026531840 reason=NETFILTER_DROP');
});

test('comment: names over inodes, UTF-8 kept', () => {
  assert.equal(packetComment(ev({ netnsName: 'pod-ä', func: 'tc:egress' })), 'tc:egress skb=0xffff888104870900 netns=pod-ä');
  const file = buildPcapng([ev({ netnsName: 'pod-ä', ifname: 'ẞ0', packet: { data: DNS, origLen: DNS.length, l2: false } })], { snaplen: SNAPLEN });
  blocks(file);
  assert.ok(file.includes(Buffer.from('ẞ0@pod-ä')));
});

test('snaplen is checked', () => {
  assert.throws(() => buildPcapng([], { snaplen: 0 }), /snaplen 0 is out of range/);
  assert.throws(() => buildPcapng([], { snaplen: 65536 }), /out of range/);
});

class Collect extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    cb();
  }
}

test('sink: same bytes as buildPcapng across chunk boundaries, counts skipped events', async () => {
  const out = new Collect();
  // A chunk smaller than some packets forces flushes and a buffer of its own.
  const sink = new PcapngSink(out, { snaplen: SNAPLEN, chunkSize: 200, maxDelayMs: 0 });
  for (const e of EVENTS) sink.event(e);
  await sink.close();
  assert.ok(out.chunks.length > 2);
  assert.deepEqual(Buffer.concat(out.chunks), buildPcapng(EVENTS, { snaplen: SNAPLEN }));
  assert.equal(sink.packets, 4);
  assert.equal(sink.skipped, 1);
  assert.ok(out.writableEnded);
});

test('sink: a write error stops it and close() rejects', async () => {
  const errors: string[] = [];
  const broken = new Writable({ write: (_c, _e, cb) => cb(Object.assign(new Error('no space'), { code: 'ENOSPC' })) });
  const sink = new PcapngSink(broken, { snaplen: SNAPLEN, maxDelayMs: 0, onError: (e) => errors.push(e.message) });
  sink.event(EVENTS[0]!);
  sink.flush();
  await new Promise((r) => setImmediate(r));
  sink.event(EVENTS[1]!);
  await assert.rejects(sink.close(), /no space/);
  assert.deepEqual(errors, ['no space']);
  assert.equal(sink.packets, 1);
});

// ---------------------------------------------------------------------------
// tshark reads it

function haveTshark(): boolean {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('tshark reads every packet with its comment and fields', { skip: haveTshark() ? false : 'tshark is not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-pcapng-'));
  try {
    const file = join(dir, 'trace.pcapng');
    const sink = new PcapngSink(createWriteStream(file), { snaplen: SNAPLEN });
    for (const e of EVENTS) sink.event(e);
    await sink.close();
    assert.ok(readFileSync(file).length > 0);
    const out = execFileSync(
      'tshark',
      ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.comment', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type', '-e', 'udp.dstport', '-e', 'frame.cap_len', '-e', 'frame.len'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    assert.deepEqual(out.trim().split('\n'), [
      `net_dev_queue skb=0xffff888104870900 netns=4026531840|192.0.2.1|192.0.2.2|8||${PING.length}|${PING.length}`,
      `net_dev_xmit skb=0xffff888104870900 netns=4026531840|192.0.2.1|192.0.2.2|8||${PING.length}|${PING.length}`,
      `nf:ipv4:local_in skb=0xffff888006b1c700 netns=b|198.51.100.7|203.0.113.53||53|${DNS.length}|${DNS.length}`,
      `kfree_skb skb=0xffff888006b1d800 netns=4026531840 reason=NETFILTER_DROP|192.0.2.1|192.0.2.9||2000|${SNAPLEN}|${BIG.length + 1000}`,
    ]);
    // Nanosecond timestamps survive.
    const times = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(times.trim().split('\n')[0], '1795757400.123456789');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
