/** The enricher's note of a rewrite: where one skb's tuple changes between points, and where its address went to another packet. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RawEvent } from '../../src/decode/event.js';
import type { Tuple } from '../../src/decode/tuple.js';
import { Enricher } from '../../src/trace/enrich.js';
import { NameBook } from '../../src/trace/names.js';

const POINTS = [{ type: 'tracepoint' as const, name: 'net_dev_queue' }, { type: 'tracepoint' as const, name: 'skb_copy_datagram_iovec' }];

function raw(skb: bigint, pointId: number, tuple: Tuple): RawEvent {
  return {
    flags: 1, tsNs: 1n, skb, caller: 0n, pointId, cpu: 0, pid: 1, netns: 0, mark: 0, ifindex: 0, len: 84, mtu: 1500, stackId: 0,
    dropReason: 0, protocol: 0x800, hook: 0, pf: 0, comm: 'ping', funcIp: 0n, tuple, vlan: null, packet: null, ct: null, verdict: null, sections: null,
  };
}

const tuple = (saddr: string, daddr: string, dport = 0): Tuple => ({ l3: 4, saddr, daddr, sport: 0, dport, l4proto: dport ? 17 : 1, tcpFlags: 0 });

test('a changed tuple on one skb is noted; the reverse of its last one is another packet at the address, not a NAT', () => {
  const e = new Enricher({
    points: POINTS, names: new NameBook(), dropReasons: new Map(), startMonoNs: 0n, startWallNs: 0n, symbols: null, stacks: null,
    tupleChanges: true, redirectFlags: null,
  });
  const request = tuple('192.0.2.1', '192.0.2.2');
  assert.equal(e.enrich(raw(1n, 0, request)).tupleBefore, null);
  assert.equal(e.enrich(raw(1n, 1, tuple('192.0.2.2', '192.0.2.1'))).tupleBefore, null);
  assert.equal(e.enrich(raw(2n, 0, tuple('192.0.2.1', '192.0.2.2', 80))).tupleBefore, null);
  assert.deepEqual(e.enrich(raw(2n, 0, tuple('192.0.2.1', '198.51.100.2', 8080))).tupleBefore, tuple('192.0.2.1', '192.0.2.2', 80));
});
