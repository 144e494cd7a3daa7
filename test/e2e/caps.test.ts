/** The capability model on this kernel: each answer asked of the kernel once, and `pktpath doctor` reports them all. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAPABILITIES, capability, capabilityLabel, has } from '../../src/kernel/caps.js';
import { runPktpath, waitNoPrograms } from '../helpers/tracer.js';

test('each capability is asked of the kernel once per process, and its trial leaves nothing loaded', async () => {
  const first = CAPABILITIES.map(capability);
  assert.deepEqual(CAPABILITIES.map(capability), first);
  CAPABILITIES.forEach((c, i) => assert.equal(capability(c), first[i], `${c} was worked out again`));
  // What pktpath needs on any kernel it runs on (the tests' own kernel is 6.18).
  for (const c of ['btf', 'ringbuf', 'tp_btf', 'tcx', 'netfilter', 'direct-packet-loads', 'drop-reasons'] as const) {
    assert.ok(has(c), `${c}: ${capability(c).detail}`);
  }
  assert.deepEqual((await waitNoPrograms()).filter((n) => n.startsWith('feature_')), []);
});

test('doctor reports every capability of the model, and what it will use', () => {
  const r = runPktpath(['doctor']);
  assert.equal(r.code, 0, r.stderr);
  for (const c of CAPABILITIES) assert.ok(r.stdout.includes(capabilityLabel(c)), `${capabilityLabel(c)} missing from:\n${r.stdout}`);
  assert.match(r.stdout, /ring buffer maps\s*│ yes/);
  assert.match(r.stdout, /pktpath will use: .*skb tracepoints/);
});
