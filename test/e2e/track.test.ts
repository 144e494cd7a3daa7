/**
 * What follows beyond the matched skb, on this kernel (tracepoints, tc and
 * netfilter; fentry refused): --filter-track-skb-by-stackid takes up the
 * echo reply B makes on the stack where the request is in hand, and the
 * flags that need trampolines say so in one line.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { has } from '../../src/kernel/caps.js';
import { type JsonEvent, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';
const FENTRY = has('fentry');

before(() => {
  ({ a: A } = twoHosts(lab));
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** Echo requests marked 7 in A (the veth clears the mark as they cross into B), traced from A's namespace. */
async function markedPing(args: string[], attach = 'tracepoints'): Promise<{ events: JsonEvent[]; stderr: string }> {
  const tracer = await startTracer(['--filter-netns', `/run/netns/${A}`, '--filter-mark', '7', '--attach', attach, '--output-tuple', ...args]);
  const sent = await lab.exec(A, ['ping', '-c', '2', '-i', '0.3', '-W', '2', '-m', '7', '192.0.2.2']);
  const r = await tracer.stop();
  assert.equal(sent.code, 0, sent.stderr);
  assert.equal(r.code, 0, r.stderr);
  return { events: r.events, stderr: r.stderr };
}

const replies = (events: JsonEvent[]) => events.filter((e) => e.tuple?.saddr === '192.0.2.2' && e.tuple.daddr === '192.0.2.1');

test('--filter-track-skb-by-stackid: the echo reply made on the stack of a followed request is followed; without it, not', async () => {
  const by = await markedPing(['--filter-track-skb-by-stackid']);
  const taken = replies(by.events);
  assert.ok(by.events.some((e) => e.tuple?.daddr === '192.0.2.2' && e.func === 'netif_receive_skb'), `the request in B:\n${by.stderr}`);
  assert.ok(taken.some((e) => e.func === 'net_dev_start_xmit'), `no reply followed:\n${by.events.map((e) => `${e.func} ${e.tuple?.saddr}`).join('\n')}`);
  const m = /followed (\d+) skbs \((\d+) taken up on a followed skb's kernel stack/.exec(by.stderr);
  assert.ok(m && Number(m[2]) >= 2, by.stderr);
  const plain = await markedPing(['--filter-track-skb']);
  assert.ok(plain.events.some((e) => e.func === 'netif_receive_skb'), plain.stderr);
  assert.deepEqual(replies(plain.events), []);
});

test('--filter-track-skb says in one line what it cannot follow where the kernel refuses fexit', { skip: FENTRY ? 'fentry works here' : false }, async () => {
  const { stderr } = await markedPing(['--filter-track-skb'], 'tracepoints,functions');
  assert.match(stderr, /^pktpath: --filter-track-skb: copies of followed skbs \(skb_copy, pskb_copy, skb_copy_expand\) are not followed: this kernel refuses fexit \(.+\); clones are, by the data they share$/m);
});

test('--filter-non-skb-funcs: exit 1 and one line where the kernel refuses fentry, nothing attached; bad names refused before', { skip: FENTRY ? 'fentry works here' : false }, async () => {
  const r = runPktpath(['--filter-non-skb-funcs', 'fib_table_lookup', '--filter-netns', `/run/netns/${A}`, '--duration', '1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^pktpath: --filter-non-skb-funcs: needs fentry and fexit \(a traced skb function opens the window at its entry and closes it at its exit\), which this kernel refuses \(.+\); `pktpath doctor` shows what works\n$/);
  assert.deepEqual(await waitNoPrograms(), []);
  const bad = runPktpath(['--filter-non-skb-funcs', 'fib;x', '--duration', '1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^pktpath: --filter-non-skb-funcs: 'fib;x' is not a kernel function's name/);
});
