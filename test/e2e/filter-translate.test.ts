/**
 * The cBPF→eBPF translation, held against libpcap's own interpreter: each
 * program runs in the kernel (BPF_PROG_TEST_RUN on the filter_test probe,
 * with the translation injected as pktpath injects it into every probe) and
 * in bpf_filter(3), on every packet of a corpus, and the verdicts must agree.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BpfObject } from '../../src/bpf/object.js';
import { testRun } from '../helpers/testrun.js';
import { type PacketLoads, translate } from '../../src/filter/cbpf-to-ebpf.js';
import { FILTER_MAGIC, injectRegion } from '../../src/filter/inject.js';
import { type CbpfInsn, compileL2L3, pcapVerdict } from '../../src/filter/pcap.js';
import { has } from '../../src/kernel/caps.js';
import { probesDir } from '../../src/trace/builds.js';
import { corpus } from '../helpers/packets.js';

const PACKETS = corpus();
const open: BpfObject[] = [];
after(() => open.forEach((o) => o.close()));

const PROGRAMS = ['filter_test_l2', 'filter_test_l3', 'filter_test_l2_slow', 'filter_test_l3_slow'];

/**
 * The ways translated code is run: with the prefetch, as the probes run it
 * on every kernel; without (every load through the helper); and reading the
 * packet in place, where the kernel allows it (the probes' first choice there).
 */
const WAYS: Array<{ slow: boolean; loads: PacketLoads; says: string }> = [
  { slow: false, loads: 'copy', says: '' },
  { slow: true, loads: 'copy', says: ' (no prefetch)' },
  ...(has('direct-packet-loads') ? [{ slow: true, loads: 'direct' as const, says: ' (in place)' }] : []),
];

/** Loads the test probe with `prog` translated into its L2 or L3 region; `slow`: without the prefetch. */
function load(prog: CbpfInsn[], l3: boolean, slow: boolean, loads: PacketLoads = 'copy') {
  const obj = BpfObject.open(join(probesDir(), 'filter_test.bpf.o'), 'filter test');
  open.push(obj);
  const name = `filter_test_${l3 ? 'l3' : 'l2'}${slow ? '_slow' : ''}`;
  for (const p of PROGRAMS) obj.program(p).setAutoload(p === name);
  const p = obj.program(name);
  p.setInsns(injectRegion(p.insns(), l3 ? FILTER_MAGIC.l3 : FILTER_MAGIC.l2, translate(prog, loads), name));
  obj.load();
  return p;
}

function agree(what: string, prog: CbpfInsn[], l3: boolean): { matched: number } {
  let matched = 0;
  for (const { slow, loads, says } of WAYS) {
    const p = load(prog, l3, slow, loads);
    for (const { name, frame } of PACKETS) {
      const packet = l3 ? frame.subarray(14) : frame;
      const want = pcapVerdict(prog, packet);
      const got = testRun(p, frame);
      assert.equal(got, want, `${what}${says} on '${name}': kernel ${got}, libpcap ${want}`);
      if (want && !slow) matched++;
    }
  }
  return { matched };
}

const EXPRESSIONS = [
  'icmp', 'tcp port 80', 'tcp port 8080', 'udp and dst host 198.51.100.7', 'tcp[tcpflags] & tcp-syn != 0',
  'tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)', 'ip6 and icmp6', 'net 198.51.100.0/24', 'not icmp',
  'ip6 net 2001:db8:1::/48', 'ip[6:2] & 0x1fff != 0', 'greater 100', 'less 60', 'len > 64 and len < 300',
  'ip[8] + ip[9] > 70', 'ip[8] * 2 - ip[9] / 2 = 125', 'ip[8] % 7 = 1 and ip[8] ^ 0xff = 0xbf', 'ip[9] << 1 | 1 = 13',
  'ip[8] >> 2 & 0xf = 0', 'udp[8:4] = 0x68656c6c', 'ip proto 47', 'vlan 100 and tcp', 'arp', 'ether[12:2] = 0x0806',
  'tcp and (dst port 80 or dst port 443)', 'ip6 and tcp dst port 443', 'udp port 53 or icmp6', 'ip[0] & 0xf > 5',
];

for (const expression of EXPRESSIONS) {
  test(`'${expression}': the kernel agrees with libpcap, at L2 and at L3`, () => {
    // L3 null: link-layer only (arp, vlan, ether[…]), where pktpath loads a reject-all program.
    const { l2, l3 } = compileL2L3(expression, 'filter');
    const m = agree(`L2 '${expression}'`, l2, false);
    if (l3) agree(`L3 '${expression}'`, l3, true);
    // Every expression is exercised both ways somewhere in the corpus, so a broken translation cannot hide.
    assert.ok(m.matched > 0 || expression.startsWith('ip[8] *') || expression.startsWith('ip[9] <<'),
      `'${expression}' matched nothing in the corpus`);
  });
}

/** Classic programs written by hand for what libpcap's compiler rarely emits. */
const J = (code: number, jt: number, jf: number, k: number): CbpfInsn => ({ code, jt, jf, k });
const HAND: Array<[string, CbpfInsn[]]> = [
  // ld len; st M[3]; ldx M[3]; txa; ldx len; sub x; ret a  → 0 (len - len)… then +1
  ['scratch memory, tax/txa, ldx len', [J(0x80, 0, 0, 0), J(0x02, 0, 0, 3), J(0x61, 0, 0, 3), J(0x87, 0, 0, 0),
    J(0x81, 0, 0, 0), J(0x1c, 0, 0, 0), J(0x04, 0, 0, 7), J(0x16, 0, 0, 0)]],
  // ldx #0; ld [12:2]; div x → division by zero rejects
  ['division by X = 0 rejects', [J(0x01, 0, 0, 0), J(0x28, 0, 0, 12), J(0x3c, 0, 0, 0), J(0x06, 0, 0, 1)]],
  ['modulo by X = 0 rejects', [J(0x01, 0, 0, 0), J(0x28, 0, 0, 12), J(0x9c, 0, 0, 0), J(0x06, 0, 0, 1)]],
  // ldx #3; ld [14]; mod x; neg; ret a
  ['mod by X, neg, ret a', [J(0x01, 0, 0, 3), J(0x30, 0, 0, 14), J(0x9c, 0, 0, 0), J(0x84, 0, 0, 0), J(0x16, 0, 0, 0)]],
  // ldx #4; ld [14]; lsh x; rsh #1; or x; xor #5; and #0xff; ret a
  ['shifts by X and K, or/xor/and', [J(0x01, 0, 0, 4), J(0x30, 0, 0, 14), J(0x6c, 0, 0, 0), J(0x74, 0, 0, 1),
    J(0x4c, 0, 0, 0), J(0xa4, 0, 0, 5), J(0x54, 0, 0, 0xff), J(0x16, 0, 0, 0)]],
  // ld [14]; ldx #0x45; jeq x → ret 7 else ret 3; with a ja over a dead ret
  ['jeq/jgt/jge/jset on X, ja', [J(0x30, 0, 0, 14), J(0x01, 0, 0, 0x45), J(0x1d, 2, 0, 0), J(0x06, 0, 0, 3),
    J(0x05, 0, 0, 1), J(0x06, 0, 0, 9), J(0x2d, 0, 2, 0), J(0x3d, 1, 0, 0), J(0x06, 0, 0, 5), J(0x4d, 1, 0, 0),
    J(0x06, 0, 0, 0), J(0x06, 0, 0, 7)]],
  // ld ind out of bounds: ldx #2000; ld [x+0:4] rejects; ld [x+0:1] likewise
  ['indirect load past the end rejects', [J(0x01, 0, 0, 2000), J(0x40, 0, 0, 0), J(0x06, 0, 0, 1)]],
  // Offsets past what an instruction holds (32767): computed in place, and out of the packet.
  ['absolute loads far past the end reject', [J(0x20, 0, 0, 40000), J(0x06, 0, 0, 1)]],
  ['absolute byte load at 32766 rejects', [J(0x30, 0, 0, 32766), J(0x06, 0, 0, 1)]],
  ['absolute load at the last byte', [J(0x80, 0, 0, 0), J(0x07, 0, 0, 0), J(0x50, 0, 0, 0xffffffff), J(0x06, 0, 0, 0)]],
  ['ld ind b/w and ld imm', [J(0x01, 0, 0, 10), J(0x50, 0, 0, 4), J(0x07, 0, 0, 0), J(0x40, 0, 0, 2), J(0x54, 0, 0, 0x7fffffff),
    J(0x00, 0, 0, 0), J(0x1c, 0, 0, 0), J(0x16, 0, 0, 0)]],
  ['mul/add/sub by K, jgt/jge/jset by K', [J(0x30, 0, 0, 23), J(0x24, 0, 0, 3), J(0x04, 0, 0, 1), J(0x14, 0, 0, 2),
    J(0x25, 0, 2, 10), J(0x35, 0, 1, 20), J(0x45, 0, 0, 1), J(0x16, 0, 0, 0)]],
];

for (const [what, prog] of HAND) {
  test(`hand-written: ${what}`, () => {
    agree(what, prog, false);
    agree(what, prog, true);
  });
}

before(() => {
  assert.ok(PACKETS.length > 10);
});
