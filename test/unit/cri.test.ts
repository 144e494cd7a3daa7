/**
 * The container runtime's side of pod names, without a runtime: the checks
 * on what it answers (names, the sandbox's namespace in its verbose status),
 * and a runtime that accepts the connection and never answers (pktpath goes
 * on without pods after the deadline, and says so once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CRI_DEADLINE_MS, DEFAULT_CRI_SOCKETS, isDns1123Label, isDns1123Subdomain, parsePodSelector, sandboxNetnsPath } from '../../src/kernel/cri.js';
import { PodCatalog } from '../../src/kernel/pods.js';
import { netnsLabel } from '../../src/output/format.js';

test('pod selectors are NAMESPACE/NAME as Kubernetes checks them', () => {
  assert.deepEqual(parsePodSelector('default/web-0'), { namespace: 'default', name: 'web-0' });
  assert.deepEqual(parsePodSelector('kube-system/coredns-5d78c9869d-abcde'), { namespace: 'kube-system', name: 'coredns-5d78c9869d-abcde' });
  assert.deepEqual(parsePodSelector('ns/a.b.c'), { namespace: 'ns', name: 'a.b.c' });
  for (const bad of ['web-0', '/web-0', 'default/', 'Default/web-0', 'default/Web', 'a.b/web', 'default/web_0', 'default/web-0\u001b[2J', `${'a'.repeat(64)}/x`]) {
    assert.throws(() => parsePodSelector(bad), /NAMESPACE\/NAME/, bad);
  }
  assert.equal(isDns1123Label('a'.repeat(63)), true);
  assert.equal(isDns1123Label('-a'), false);
  assert.equal(isDns1123Subdomain(`${'a'.repeat(63)}.${'b'.repeat(63)}`), true);
  assert.equal(isDns1123Subdomain('a..b'), false);
});

test("the sandbox's namespace from PodSandboxStatus's verbose info (containerd 1.6's shape), else its pid's", () => {
  // As containerd 1.6.20 answers (trimmed to the keys read and a few beside them).
  const info = {
    pid: 23371, processStatus: 'running', netNamespaceClosed: false, image: 'pktpath.test/pause:1',
    runtimeSpec: { linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' },
      { type: 'network', path: '/var/run/netns/cni-9b68ce7f-6f6d-b3ee-3542-1e681272fe8e' }] } },
  };
  assert.equal(sandboxNetnsPath({ info: JSON.stringify(info) }), '/var/run/netns/cni-9b68ce7f-6f6d-b3ee-3542-1e681272fe8e');
  const noPath = { ...info, runtimeSpec: { linux: { namespaces: [{ type: 'network' }] } } };
  assert.equal(sandboxNetnsPath({ info: JSON.stringify(noPath) }), '/proc/23371/ns/net');
  assert.equal(sandboxNetnsPath({ info: JSON.stringify({ runtimeSpec: { linux: { namespaces: [{ type: 'network', path: 'relative' }] } } }) }), null);
  assert.equal(sandboxNetnsPath({ info: '{not json' }), null);
  assert.equal(sandboxNetnsPath({}), null);
  assert.equal(sandboxNetnsPath({ info: JSON.stringify({ pid: -1 }) }), null);
});

test('a namespace is named by its pod first, then by /run/netns, then by inode', () => {
  assert.equal(netnsLabel({ netns: 7, netnsName: 'cni-1', pod: { namespace: 'default', name: 'web-0' } }), 'default/web-0');
  assert.equal(netnsLabel({ netns: 7, netnsName: 'cni-1', pod: null }), 'cni-1');
  assert.equal(netnsLabel({ netns: 7, netnsName: '' }), '7');
});

test('a runtime that never answers: no pods after the deadline, said once, not asked again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pktpath-cri-'));
  const socket = path.join(dir, 'hung.sock');
  const held: net.Socket[] = [];
  const server = net.createServer((c) => held.push(c));
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const said: string[] = [];
    const t0 = performance.now();
    const catalog = await PodCatalog.open({ socket, needed: false, say: (l) => said.push(l) });
    const ms = performance.now() - t0;
    assert.ok(ms >= CRI_DEADLINE_MS - 50 && ms < CRI_DEADLINE_MS + 3000, `gave up after ${ms.toFixed(0)} ms`);
    assert.equal(catalog.live, false);
    assert.deepEqual(catalog.pods, []);
    assert.equal(said.length, 1);
    assert.match(said[0]!, /did not answer .*namespaces are named by \/run\/netns; --cri-socket/);
    await catalog.refresh();
    assert.equal(said.length, 1, 'said once');
    catalog.close();
  } finally {
    for (const c of held) c.destroy();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('no runtime socket: silent unless pods were asked for', async (t) => {
  if (DEFAULT_CRI_SOCKETS.some((s) => fs.existsSync(s))) {
    t.diagnostic('a container runtime runs here: the default sockets are not absent');
  } else {
    const plain: string[] = [];
    const none = await PodCatalog.open({ socket: null, needed: false, say: (l) => plain.push(l) });
    assert.equal(plain.length, 0, 'a plain host hears nothing of runtimes');
    assert.equal(none.live, false);
    const asked: string[] = [];
    await PodCatalog.open({ socket: null, needed: true, say: (l) => asked.push(l) });
    assert.equal(asked.length, 1);
    assert.match(asked[0]!, /no container runtime socket .*--cri-socket PATH/);
  }
  const quiet: string[] = [];
  const gone = '/nonexistent/pktpath-cri.sock';
  await PodCatalog.open({ socket: gone, needed: false, say: (l) => quiet.push(l) });
  assert.equal(quiet.length, 1, 'an explicit --cri-socket that is missing is said');
  assert.match(quiet[0]!, /no socket at \/nonexistent/);
});

test('--filter-pod and --filter-netns on the command line: repeatable, checked, in the order given', async () => {
  const { buildConfig } = await import('../../src/cli/trace-config.js');
  const cfg = buildConfig({ filterPod: ['default/web-0', ' kube-system/dns-1 '], filterNetns: ['a', 'inode:5'], criSocket: '/tmp/cri.sock' }, []);
  assert.deepEqual(cfg.filter.pods, [{ namespace: 'default', name: 'web-0' }, { namespace: 'kube-system', name: 'dns-1' }]);
  assert.deepEqual(cfg.filter.netns, ['a', 'inode:5']);
  assert.equal(cfg.filter.criSocket, '/tmp/cri.sock');
  assert.deepEqual(buildConfig({}, []).filter.netns, []);
  assert.throws(() => buildConfig({ filterPod: ['web-0'] }, []), /--filter-pod: 'web-0' is not NAMESPACE\/NAME/);
  assert.throws(() => buildConfig({ filterNetns: ['a', ' '] }, []), /--filter-netns: empty/);
});
