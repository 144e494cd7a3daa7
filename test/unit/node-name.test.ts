/** `record --node`: the node's name in the trace's header, a DNS-1123 subdomain; the host name by default. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isNodeName, nodeName } from '../../src/cli/node-name.js';
import { UsageError } from '../../src/cli/values.js';
import { validateJsonLine } from '../helpers/schema.js';

const HEADER = { v: 1, type: 'header', pktpath: '0.1.0', kernel: 'Linux 6.18.0 x86_64', time: '2026-12-07T17:00:00.000000000Z', argv: [],
  command: ['true'], points: [], notes: [], namespaces: [] };

test('node names: DNS-1123 labels and subdomains, as Kubernetes names nodes', () => {
  for (const ok of ['node-1', 'ip-10-0-1-7.eu-west-1.compute.internal', 'a', '0', 'a'.repeat(63), `${'a'.repeat(63)}.${'b'.repeat(63)}`]) {
    assert.ok(isNodeName(ok), ok);
    assert.equal(nodeName(ok), ok);
  }
  for (const bad of ['', 'Node-1', '-node', 'node-', 'node..a', '.node', 'node_1', 'a'.repeat(64), `${'a.'.repeat(126)}ab`, 'node 1', 'nöde']) {
    assert.ok(!isNodeName(bad), bad);
  }
});

test('--node: a bad name is one line, its control characters escaped; the host name is the default, in lower case', () => {
  assert.throws(() => nodeName('evil\x1b[31m'), (e: Error) => e instanceof UsageError && !e.message.includes('\x1b') && !e.message.includes('\n') &&
    /^--node: 'evil\\x1b\[31m' is not a node name/.test(e.message));
  assert.equal(nodeName(undefined, 'Build-Host.Example'), 'build-host.example');
  assert.throws(() => nodeName(undefined, 'my_laptop'), /the host name 'my_laptop' is not a node name .*; name the node with --node NAME/);
});

test('the header\'s node in schema/event.v1.json: a node name, and absent in older traces', () => {
  assert.equal(validateJsonLine(JSON.stringify(HEADER)), null);
  assert.equal(validateJsonLine(JSON.stringify({ ...HEADER, node: 'node-1.example' })), null);
  assert.notEqual(validateJsonLine(JSON.stringify({ ...HEADER, node: 'Node_1' })), null);
  assert.notEqual(validateJsonLine(JSON.stringify({ ...HEADER, node: 'a'.repeat(254) })), null);
});
