/** The soak benchmark in its short form: steady traffic, namespaces coming and going, nothing growing, nothing left. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { soak } from '../../bench/soak.js';

test('20 s of traffic with namespaces created and deleted: fds and memory flat, nothing left', async () => {
  const r = await soak(20);
  assert.deepEqual(r.problems, []);
  assert.ok(r.namespacesAdded >= 3, `followed ${r.namespacesAdded} namespaces`);
  assert.ok(r.events > 1000, `${r.events} events`);
});
