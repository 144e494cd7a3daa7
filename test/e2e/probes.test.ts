/**
 * Loading pktpath's own probes in this process (no attachment): a load that
 * fails says what libbpf and the verifier said, though loads run with
 * libbpf's messages off until one fails; objects loaded together share
 * their maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfError } from '../../src/bpf/errors.js';
import { mapInfos, programs } from '../../src/bpf/loaded.js';
import { NO_CODE } from '../../src/trace/probe-code.js';
import { ProbeSet, probeLoads } from '../../src/trace/probes.js';

const CONFIG = { pointId: 0 };
const SET = { ringSize: 1 << 16, code: NO_CODE, config: { stack: false, netns: 0, ifindex: 0, mark: null, track: false, snaplen: 0 } };

test('a load the verifier refuses quotes its log', () => {
  const set = new ProbeSet(SET);
  try {
    // kfree_skb's second argument is the caller's address, not an skb: reading it as one is refused.
    assert.throws(() => set.load('tracepoint', { ...CONFIG, skbArg: 1 }, 'test tracepoint', 'kfree_skb'), (e: unknown) => {
      assert.ok(e instanceof BpfError, String(e));
      assert.ok(e.logTail.length > 0, `no libbpf messages in: ${e.message}`);
      assert.match(e.logTail.join('\n'), /invalid mem access|R\d+ /);
      return true;
    });
    // The messages are back on afterwards, and a good load still loads.
    set.load('tracepoint', CONFIG, 'test tracepoint', 'netif_receive_skb');
  } finally {
    set.close();
  }
});

test('every probe kind this kernel can attach loads (with its messages off), as doctor reports it', () => {
  const results = probeLoads(['tracepoint', 'tc', 'netfilter']);
  for (const [kind, r] of Object.entries(results)) assert.equal(r.error, null, `${kind}: ${r.error?.message}`);
});

test('objects loaded together share one ring; a refused one is null, and loaded again on its own it quotes the verifier', async () => {
  const before = Math.max(0, ...mapInfos().map((m) => m.id));
  const set = new ProbeSet(SET);
  try {
    const good = set.request('tracepoint', CONFIG, 'test tracepoint', 'netif_receive_skb');
    // kfree_skb's second argument is the caller's address, not an skb: refused.
    const refused = set.request('tracepoint', { ...CONFIG, skbArg: 1 }, 'refused tracepoint', 'kfree_skb');
    const tc = set.request('tc', CONFIG, 'test tc observer');
    const loads = set.loadTogether([good, refused, tc]);
    // A refusal is answered last, once every load has ended: loaded again at once, it has the log.
    const order: string[] = [];
    loads.forEach((load, i) => void load.then(() => order.push(['good', 'refused', 'tc'][i]!)));
    const [a, b, t] = await Promise.all(loads);
    assert.equal(order.at(-1), 'refused', order.join(', '));
    assert.ok(a && a[0]!.program.fd.raw > 0, 'the tracepoint loaded');
    assert.equal(b, null);
    assert.ok(t && t[0]!.program.fd.raw > 0, 'the tc observer loaded');
    const rings = mapInfos().filter((m) => m.id > before && m.name === 'events');
    assert.equal(rings.length, 1, 'one ring for every object');
    assert.throws(() => set.loadRequest(refused), (e: unknown) => {
      assert.ok(e instanceof BpfError, String(e));
      assert.match(e.logTail.join('\n'), /invalid mem access|R\d+ /);
      return true;
    });
  } finally {
    await set.settled();
    set.close();
  }
});

test('a set closed while its objects still load keeps none of them: each is closed as its load ends', async () => {
  const before = Math.max(0, ...programs().map((p) => p.id));
  const set = new ProbeSet(SET);
  const loads = set.loadTogether([
    set.request('tracepoint', CONFIG, 'test tracepoint', 'netif_receive_skb'),
    set.request('tc', CONFIG, 'test tc observer'),
  ]);
  set.close();
  assert.deepEqual(await Promise.all(loads), [null, null]);
  await set.settled();
  assert.deepEqual(programs().filter((p) => p.id > before && p.name.startsWith('pktpath')).map((p) => p.name), []);
});
