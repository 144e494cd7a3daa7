/**
 * --filter-skb-expr on real traffic: a field condition compiled against this
 * kernel's BTF selects exactly the skbs it names. Tracers with complementary
 * expressions watch the same packets at once, so their counts can be held
 * against a third that traces everything.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { type JsonEvent, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
let B = '';
const dir = mkdtempSync(join(tmpdir(), 'pktpath-btf-'));

before(() => {
  ({ a: A, b: B } = twoHosts(lab));
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** Tracers of namespace B, each with its own extra arguments, over the same traffic. */
async function traceTogether(variants: string[][], traffic: () => Promise<void>): Promise<JsonEvent[][]> {
  const tracers = await Promise.all(variants.map((v) => startTracer(['--filter-netns', B, '--filter-proto', 'icmp', ...v])));
  const sent = await traffic().then(() => null, (e: unknown) => e);
  const results = await Promise.all(tracers.map((t) => t.stop()));
  if (sent) throw sent;
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  return results.map((r) => r.events);
}

const ping = async (ns: string, size: number, to = '192.0.2.2') => {
  const r = await lab.exec(ns, ['ping', '-c', '2', '-i', '0.2', '-s', String(size), '-W', '2', to]);
  assert.equal(r.code, 0, r.stderr);
};

test('skb->len splits a mixed-size flow exactly: both sides add up to the whole', async () => {
  const [big, small, all] = await traceTogether(
    [['--filter-skb-expr', 'skb->len > 500'], ['--filter-skb-expr', '!(skb->len > 500)'], []],
    async () => {
      await ping(A, 100);
      await ping(A, 1000);
    },
  );
  assert.ok(big!.length >= 2 * 2 * 5, `${big!.length} events of the big packets`);
  assert.ok(small!.length >= 2 * 2 * 5, `${small!.length} events of the small packets`);
  assert.ok(big!.every((e) => e.len > 500), 'every event of skb->len > 500 is longer');
  assert.ok(small!.every((e) => e.len <= 500), 'every event of the other side is not');
  assert.equal(big!.length, all!.filter((e) => e.len > 500).length);
  assert.equal(small!.length, all!.filter((e) => e.len <= 500).length);
});

test('a device name through skb->dev selects one device; masks, big-endian fields and bitfields compare as written', async () => {
  const [veth, lo, ip, host] = await traceTogether(
    [
      ['--filter-skb-expr', 'skb->dev->name == "veth-b"'],
      ['--filter-skb-expr', 'skb->dev->name == "lo"'],
      ['--filter-skb-expr', 'skb->protocol == 0x0800 && skb->mark & 0xff == 0'],
      ['--filter-skb-expr', 'skb->pkt_type == 0 && skb->dev->name != "lo"'],
    ],
    async () => {
      await ping(A, 56);
      // From B to itself: over lo.
      await ping(B, 56, '192.0.2.2');
    },
  );
  assert.ok(veth!.length > 0 && lo!.length > 0);
  assert.ok(veth!.every((e) => e.iface.startsWith('veth-b:')), [...new Set(veth!.map((e) => e.iface))].join(' '));
  assert.ok(lo!.every((e) => e.iface.startsWith('lo:')), [...new Set(lo!.map((e) => e.iface))].join(' '));
  assert.ok(ip!.length > 0 && ip!.every((e) => e.proto === 0x0800));
  // PACKET_HOST (0) off lo: the veth's packets for this host, none of lo's.
  assert.ok(host!.length > 0 && host!.every((e) => !e.iface.startsWith('lo:')));
});

test('bad expressions: one line naming the column, exit 2, nothing attached', async () => {
  const cases: Array<[string, RegExp]> = [
    ['skb->lenn > 1000', /^pktpath: --filter-skb-expr: at column 6: struct sk_buff has no field 'lenn' \(did you mean 'len'\?\)$/],
    ['skb->len == "eth0"', /^pktpath: --filter-skb-expr: at column 13: skb->len is unsigned int, not a char array: compare it with a number$/],
    ['skb->dev->name > 3', /compare it with a string/],
    ['skb->dev.name == "x"', /at column 9: skb->dev is struct net_device \*, a pointer: use '->'/],
    ['skb->len > ', /at column 12: a field \(skb->…\), a number or a string expected, not the end/],
    ['skb->mark == 0x100000000', /does not fit in skb->mark/],
  ];
  for (const [expr, re] of cases) {
    const r = runPktpath(['--filter-netns', B, '--filter-skb-expr', expr]);
    assert.equal(r.code, 2, `${expr}: ${r.stderr}`);
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.deepEqual(await waitNoPrograms(), []);
});

/** A valid BTF blob with one type, `int`, and no struct sk_buff. */
function tinyBtf(): Buffer {
  const types = Buffer.alloc(16);
  types.writeUInt32LE(1, 0); // name "int"
  types.writeUInt32LE(1 << 24, 4); // BTF_KIND_INT
  types.writeUInt32LE(4, 8); // size
  types.writeUInt32LE(32, 12); // encoding: 32 bits
  const strings = Buffer.from('\0int\0');
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0);
  hdr.writeUInt8(1, 2);
  hdr.writeUInt32LE(24, 4);
  hdr.writeUInt32LE(0, 8);
  hdr.writeUInt32LE(types.length, 12);
  hdr.writeUInt32LE(types.length, 16);
  hdr.writeUInt32LE(strings.length, 20);
  return Buffer.concat([hdr, types, strings]);
}

test('--kernel-btf: a copy of the kernel\'s BTF traces as the kernel\'s does; another BTF is the one asked', async () => {
  const copy = join(dir, 'vmlinux.btf');
  copyFileSync('/sys/kernel/btf/vmlinux', copy);
  const [events] = await traceTogether([['--kernel-btf', copy, '--filter-skb-expr', 'skb->len > 500']], () => ping(A, 1000));
  assert.ok(events!.length >= 2 * 5 && events!.every((e) => e.len > 500), `${events!.length} events`);
  // The fields are looked up in the file given, not in the kernel's BTF.
  const tiny = join(dir, 'tiny.btf');
  writeFileSync(tiny, tinyBtf());
  const r = runPktpath(['list', '--kernel-btf', tiny, '--filter-skb-expr', 'skb->len > 500']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^pktpath: --filter-skb-expr: at column 1: the BTF \(the kernel's, or --kernel-btf\) has no struct sk_buff\n$/);
  for (const bad of ['/etc/hostname', join(dir, 'none.btf')]) {
    const b = runPktpath(['--filter-netns', B, '--kernel-btf', bad]);
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /^pktpath: --kernel-btf: .*: (not a BTF file|cannot read: ENOENT)/);
    assert.equal(b.stderr.trim().split('\n').length, 1, b.stderr);
  }
});

test('--output-skb-metadata: the fields read where the event is, equal to the core fields they overlap', async () => {
  const [events] = await traceTogether([['--output-skb-metadata', 'skb->len,skb->mark,skb->dev->ifindex,skb->hash']], () => ping(A, 200));
  assert.ok(events!.length >= 2 * 2 * 5, `${events!.length} events`);
  for (const e of events!) {
    const m = e.skb_metadata!;
    assert.deepEqual(Object.keys(m), ['skb->len', 'skb->mark', 'skb->dev->ifindex', 'skb->hash'], JSON.stringify(e));
    assert.equal(m['skb->len'], e.len, `${e.func}: skb->len`);
    assert.equal(m['skb->mark'], e.mark, `${e.func}: skb->mark`);
  }
  // Where the point's device is the skb's own (receive side), the ifindex read through skb->dev is the event's.
  const rx = events!.filter((e) => e.func === 'netif_receive_skb' || e.func === 'tc:ingress');
  assert.ok(rx.length > 0 && rx.every((e) => e.skb_metadata!['skb->dev->ifindex'] === e.ifindex));
  const bad = runPktpath(['--filter-netns', B, '--output-skb-metadata', 'skb->dev->name']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^pktpath: --output-skb-metadata: at column 1: skb->dev->name is char\[16\]: only numbers and pointers can be printed \(or a byte range of it: \[0:16\]\)\n$/);
});

test('--output-skb-metadata: sixteen fields with pointer casts and byte ranges read the packet as it is on the wire', async () => {
  const mac = (ns: string, dev: string) => /link\/ether ([0-9a-f:]+)/.exec(lab.execSync(ns, ['ip', 'link', 'show', dev]))![1]!.replaceAll(':', '');
  const ip = '((struct iphdr *)(skb->head + skb->network_header))';
  const fields = [
    'skb->head[skb->mac_header:14]', `${ip}->ttl`, `${ip}->saddr`, `${ip}->daddr`, `${ip}->protocol`, 'skb->len', 'skb->mark',
    'skb->dev->ifindex', 'skb->protocol', 'skb->cb[0:4]', 'skb->network_header', 'skb->mac_header', 'skb->head[skb->network_header:20]',
    'skb->dev->name[0:6]', 'skb->hash', 'skb->sk',
  ];
  assert.equal(fields.length, 16);
  const [events] = await traceTogether([['--filter-func', '^netif_receive_skb$', '--output-skb-metadata', fields.join(',')]], async () => {
    const r = await lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-t', '33', '-W', '2', '192.0.2.2']);
    assert.equal(r.code, 0, r.stderr);
  });
  // The requests arriving on veth-b (replies go the other way, out of this filter's namespace's receive side).
  const rx = events!.filter((e) => e.iface.startsWith('veth-b:'));
  assert.ok(rx.length >= 2, `${rx.length} events on veth-b`);
  const header = mac(B, 'veth-b') + mac(A, 'veth-a') + '0800';
  for (const e of rx) {
    const m = e.skb_metadata!;
    assert.deepEqual(Object.keys(m), fields, 'each field asked, in order');
    assert.deepEqual(m['skb->head[skb->mac_header:14]'], { hex: header }, 'the Ethernet header as sent');
    assert.equal(m[`${ip}->ttl`], 33);
    assert.equal(m[`${ip}->saddr`], 0xc0000201);
    assert.equal(m[`${ip}->daddr`], 0xc0000202);
    assert.equal(m[`${ip}->protocol`], 1);
    assert.equal(m['skb->len'], e.len);
    assert.equal(m['skb->dev->ifindex'], e.ifindex);
    assert.equal(m['skb->protocol'], 0x0800);
    assert.equal(m['skb->network_header'], (m['skb->mac_header'] as number) + 14);
    // The IP header's bytes: version and length 0x45, the TTL at byte 8, protocol ICMP, the addresses at 12..19.
    const iph = (m['skb->head[skb->network_header:20]'] as { hex: string }).hex;
    assert.match(iph, /^45/);
    assert.equal(iph.slice(16, 20), '2101');
    assert.equal(iph.slice(24), 'c0000201c0000202');
    assert.deepEqual(m['skb->dev->name[0:6]'], { hex: Buffer.from('veth-b').toString('hex') });
  }
  // Text prints the bytes as hex, the numbers as pwru does.
  const bad = runPktpath(['--filter-netns', B, '--output-skb-metadata', Array.from({ length: 17 }, () => 'skb->len').join(',')]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'pktpath: --output-skb-metadata: name 1 to 16 fields, comma-separated (skb->mark,skb->hash)\n');
  const range = runPktpath(['--filter-netns', B, '--output-skb-metadata', 'skb->len[0:4]']);
  assert.equal(range.code, 2);
  assert.match(range.stderr, /^pktpath: --output-skb-metadata: at column 9: skb->len is unsigned int: a byte range needs a pointer or an array\n$/);
  assert.deepEqual(await waitNoPrograms(), []);
});

test('--output-skb, --output-skb-shared-info, --output-skb-cb: the kernel\'s own printing of the skb at each tracepoint', async () => {
  const [events] = await traceTogether([['--output-skb', '--output-skb-shared-info', '--output-skb-cb']], () => ping(A, 300));
  const tracepoints = events!.filter((e) => e.probe.type === 'tracepoint');
  assert.ok(tracepoints.length >= 2 * 2 * 3, `${tracepoints.length} tracepoint events`);
  for (const e of tracepoints) {
    const d = e.skb_dump!;
    assert.match(d.skb!, /^\(struct sk_buff\)\{/);
    // The skb's real length, as the event's core field has it, and its own address.
    assert.ok(d.skb!.includes(`.len = (unsigned int)${e.len},`), `${e.func}: len ${e.len} in\n${d.skb}`);
    // The device the event names, beside the printed skb (whose dev BTF prints as a pointer).
    assert.equal(d.dev, e.iface.split(':')[0], e.func);
    assert.match(d.shared_info!, /^\(struct skb_shared_info\)\{/);
    assert.match(d.cb!, /^[0-9a-f]{96}$/);
  }
  // tc and netfilter programs may not print from BTF: the cb only there.
  const tc = events!.filter((e) => e.probe.type === 'tc');
  assert.ok(tc.length > 0 && tc.every((e) => e.skb_dump!.skb === null && /^[0-9a-f]{96}$/.test(e.skb_dump!.cb!)));
});
