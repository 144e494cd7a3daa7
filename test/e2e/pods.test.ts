/**
 * Pods by name on real parts: containerd (Debian's) with its CRI plugin and
 * the CNI bridge, pods created and removed through the CRI calls the kubelet
 * makes, ping between them, the real pktpath asking the runtime whose
 * namespace each is.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CriNode, containerdMissing } from '../helpers/cri-node.js';
import { type JsonEvent, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const missing = containerdMissing();
const node = new CriNode();
let cannotStart: string | null = missing;

before(async () => {
  if (cannotStart !== null) return;
  try {
    await node.start();
    await node.runPod('web-a');
    await node.runPod('web-b');
  } catch (e) {
    cannotStart = `containerd cannot start here: ${(e as Error).message}`;
  }
});
after(async () => {
  const problems = await node.cleanup();
  console.log(`# CRI node: ${JSON.stringify(Object.fromEntries(Object.entries(node.timings).map(([k, v]) => [k, Math.round(v)])))}`);
  assert.deepEqual(problems, [], 'the CRI node left something behind');
  assert.equal(fs.existsSync(node.dir), false);
  assert.equal(fs.existsSync(`/run/netns/${node.nodeNetns}`), false);
  for (const pod of ['web-a', 'web-b', 'web-c']) assert.equal(node.pods.has(pod), false);
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

const skip = () => cannotStart;
const podOf = (e: JsonEvent) => (e as JsonEvent & { pod?: { namespace: string; name: string; uid: string } }).pod;

function icmpBetween(events: JsonEvent[], a: string, b: string): JsonEvent[] {
  return events.filter((e) => e.tuple?.proto === 'icmp' &&
    ((e.tuple.saddr === a && e.tuple.daddr === b) || (e.tuple.saddr === b && e.tuple.daddr === a)));
}

describe('pods by name through the CRI API', { skip: missing ?? false }, () => {
  test('ping between two pods: every point in their namespaces names the pod, in JSON and in text', async (t) => {
    if (skip()) return t.skip(skip()!);
    const a = node.pods.get('web-a')!;
    const b = node.pods.get('web-b')!;
    const tracer = await startTracer(['--cri-socket', node.socket, '--filter-pod', 'default/web-a', '--filter-pod', 'default/web-b',
      '--output-tuple', 'icmp']);
    const ping = node.inPod('web-a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', b.ip]);
    const { code, events, stdout, stderr } = await tracer.stop();
    assert.equal(ping.code, 0, ping.out);
    assert.equal(code, 0, stderr);
    const seen = icmpBetween(events, a.ip, b.ip);
    assert.ok(seen.length >= 8, `${seen.length} ICMP events between the pods:\n${stderr}`);
    for (const e of events) {
      const pod = podOf(e);
      const want = e.netns === a.netns ? a : e.netns === b.netns ? b : null;
      assert.ok(want, `an event outside the two pods' namespaces (netns ${e.netns}, ${e.func})`);
      assert.deepEqual(pod, { namespace: 'default', name: want.name, uid: want.uid }, `${e.func} in ${e.netns_name}`);
      assert.match(e.netns_name, /^cni-/, 'netns_name stays the /run/netns name');
    }
    for (const pod of [a, b]) {
      const points = new Set(seen.filter((e) => e.netns === pod.netns).map((e) => e.func));
      for (const f of ['net_dev_queue', 'netif_receive_skb', 'tc:ingress', 'tc:egress', 'nf:ipv4:local_out', 'nf:ipv4:local_in']) {
        assert.ok(points.has(f), `${f} in ${pod.name}: ${[...points].join(' ')}`);
      }
    }
    assert.doesNotMatch(stderr, /did not answer|no container runtime/);

    // The recorded trace: `show` reads the pod back, names it in NETNS and selects by it.
    const file = path.join(node.dir, 'trace.jsonl');
    fs.writeFileSync(file, stdout);
    const text = runPktpath(['show', file, '--output-meta', '--output-netns-names', '--filter-pod', 'default/web-b']);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.split('\n').filter((l) => /0x[0-9a-f]{16}/.test(l));
    assert.equal(lines.length, events.filter((e) => podOf(e)?.name === 'web-b').length);
    for (const l of lines) assert.match(l, / default\/web-b /);
  });

  test('--filter-pod selects one pod: nothing of the other', async (t) => {
    if (skip()) return t.skip(skip()!);
    const a = node.pods.get('web-a')!;
    const b = node.pods.get('web-b')!;
    const tracer = await startTracer(['--cri-socket', node.socket, '--filter-pod', 'default/web-b', '--output-tuple', 'icmp']);
    const ping = node.inPod('web-a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', b.ip]);
    const { code, events, stderr } = await tracer.stop();
    assert.equal(ping.code, 0, ping.out);
    assert.equal(code, 0, stderr);
    assert.ok(icmpBetween(events, a.ip, b.ip).length >= 4, stderr);
    for (const e of events) {
      assert.equal(e.netns, b.netns, `${e.func} in ${e.netns_name}`);
      assert.equal(podOf(e)?.name, 'web-b');
    }
  });

  test('a pod created while tracing is followed; removed mid-trace, its observers are released', async (t) => {
    if (skip()) return t.skip(skip()!);
    const a = node.pods.get('web-a')!;
    const tracer = await startTracer(['--cri-socket', node.socket, '--filter-pod', 'default/web-c', '--output-tuple', 'icmp']);
    const t0 = performance.now();
    const c = await node.runPod('web-c');
    // Followed once the runtime calls it ready and pktpath has asked it again.
    let stderr = '';
    tracer.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!/pod default\/web-c\) appeared/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /netns cni-[0-9a-f-]+ \(pod default\/web-c\) appeared|netns \d+ \(pod default\/web-c\) appeared/);
    const followedMs = performance.now() - t0;
    const ping = node.inPod('web-c', ['ping', '-c', '2', '-i', '0.2', '-W', '2', a.ip]);
    assert.equal(ping.code, 0, ping.out);
    await new Promise((r) => setTimeout(r, 300));
    await node.removePod('web-c');
    const gone = Date.now() + 10_000;
    while (!/web-c\) went away: its observers are released/.test(stderr) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
    const out = await tracer.stop();
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /--filter-pod: no pod default\/web-c on this node yet/);
    assert.match(out.stderr, /\(pod default\/web-c\) went away: its observers are released/);
    const seen = icmpBetween(out.events, c.ip, a.ip);
    assert.ok(seen.length >= 4, `${seen.length} events of web-c's ping:\n${out.stderr}`);
    for (const e of out.events) {
      assert.equal(e.netns, c.netns);
      assert.deepEqual(podOf(e), { namespace: 'default', name: 'web-c', uid: c.uid });
    }
    console.log(`# web-c followed ${followedMs.toFixed(0)} ms after RunPodSandbox was called`);
  });

  test('--filter-netns given twice: both namespaces, nothing of the node between them', async (t) => {
    if (skip()) return t.skip(skip()!);
    const a = node.pods.get('web-a')!;
    const b = node.pods.get('web-b')!;
    const tracer = await startTracer(['--cri-socket', node.socket, '--filter-netns', path.basename(a.netnsPath),
      '--filter-netns', a.netnsPath.replace(path.basename(a.netnsPath), path.basename(b.netnsPath)), '--output-tuple', 'icmp']);
    const ping = node.inPod('web-a', ['ping', '-c', '1', '-W', '2', b.ip]);
    const { code, events, stderr } = await tracer.stop();
    assert.equal(ping.code, 0, ping.out);
    assert.equal(code, 0, stderr);
    assert.deepEqual(new Set(events.map((e) => e.netns)), new Set([a.netns, b.netns]), 'the bridge in the node namespace is not traced');
    for (const e of events) assert.equal(podOf(e)?.name, e.netns === a.netns ? 'web-a' : 'web-b');
  });

  test('a runtime socket that is not one: the trace goes on by /run/netns names, said once', async (t) => {
    if (skip()) return t.skip(skip()!);
    const b = node.pods.get('web-b')!;
    const notCri = path.join(node.dir, 'not-cri.sock');
    fs.writeFileSync(notCri, '');
    const tracer = await startTracer(['--cri-socket', notCri, '--filter-netns', path.basename(b.netnsPath), '--output-tuple', 'icmp']);
    const ping = node.inPod('web-a', ['ping', '-c', '1', '-W', '2', b.ip]);
    const { code, events, stderr } = await tracer.stop();
    assert.equal(ping.code, 0, ping.out);
    assert.equal(code, 0, stderr);
    assert.equal(stderr.match(/did not answer/g)?.length, 1, stderr);
    assert.ok(events.length > 0);
    for (const e of events) assert.equal(podOf(e), undefined);
  });
});

if (missing) test('pods by name through the CRI API', (t) => t.skip(missing));
