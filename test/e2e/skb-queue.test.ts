/**
 * --output-skb-queue on real packets: an nft rule in a namespace of the
 * test's own sets the priority of its echo requests (`meta priority set`);
 * the points after the rule report it, the replies carry none; `pktpath show`
 * prints it back from the recorded JSON.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab();
let A = '';

before(() => {
  ({ a: A } = twoHosts(lab));
  // One statement a line: nft 1.0.6 reads `1:6` as a class handle only there.
  lab.nft(A, 'table inet pktpath_queue {\n chain out {\n type filter hook output priority 0;\n icmp type echo-request meta priority set 1:6\n }\n}\n');
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

test('--output-skb-queue: the priority nft set on the requests, at the points after its rule; none on the replies', async () => {
  const t = await startTracer(['--filter-netns', A, '--output-skb-queue', 'icmp']);
  const ping = await lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '192.0.2.2']);
  const r = await t.stop();
  assert.equal(ping.code, 0, ping.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.events.length > 0 && r.events.every((e) => e.skb_queue !== undefined), 'every event carries the section');
  const requests = r.events.filter((e) => e.tuple?.saddr === '192.0.2.1');
  const replies = r.events.filter((e) => e.tuple?.saddr === '192.0.2.2');
  // 1:6 is the class handle 0001:0006.
  const marked = requests.filter((e) => e.skb_queue!.priority === 0x10006);
  assert.ok(marked.length >= 2, [...new Set(requests.map((e) => `${e.func}:${e.skb_queue!.priority}`))].join(' '));
  assert.ok(marked.some((e) => e.func === 'net_dev_queue' || e.func.startsWith('tc:')), marked.map((e) => e.func).join(' '));
  assert.ok(replies.length > 0 && replies.every((e) => e.skb_queue!.priority === 0));
  // Recorded, then shown: the JSON reads back into the same text.
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-queue-'));
  try {
    writeFileSync(join(dir, 'trace.jsonl'), r.stdout);
    const shown = runPktpath(['show', join(dir, 'trace.jsonl')]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, / net_dev_queue priority=65542 queue=\d+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
