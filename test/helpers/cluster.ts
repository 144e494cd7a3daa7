/**
 * The runs and checks of the three-node scene (src/lab/cluster.ts) that the
 * merge tests share, on this kernel (test/e2e/merge.test.ts) and in the
 * guest kernels (test/kernels/merge.test.ts): one `pktpath record --node`
 * per node while traffic crosses the nodes, `pktpath merge` of the traces,
 * and each packet checked to be one journey from pod to pod, every hop once,
 * in order.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Lab, run } from '../../src/lab/lab.js';
import { CLUSTER, type Cluster, type ClusterNode, type Underlay } from '../../src/lab/cluster.js';
import { FREEING_POINTS } from '../../src/decode/points.js';
import { NodePath } from '../../src/output/packets.js';
import type { JsonHeaderRecord, JsonRecord } from '../../src/output/json.js';
import { root } from './probe-btf.js';
import { PKTPATH } from './tracer.js';
import { validateJsonLine } from './schema.js';

const PEER = join(root, 'dist/src/lab/peer.js');

export type Line = JsonRecord | (JsonHeaderRecord & { type: 'header' }) | { type: string };
export const readLines = (path: string): Line[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
export const eventsOf = (lines: Line[]) => lines.filter((l): l is JsonRecord => !('type' in l) || l.type === undefined);

/** Where a run's files go, and how long the three pktpaths may take to attach. */
export interface RunPlace {
  file(name: string): string;
  attachMs?: number;
  /** More for each `pktpath record` (the points to attach). */
  recordArgs?: string[];
}

/**
 * One run of the scenario: a `pktpath record` per node (each watching its
 * node's namespace and its pod's, until told to stop), the traffic once all
 * three have attached; the traces, by node.
 */
export async function recordRun(lab: Lab, c: Cluster, at: RunPlace, name: string, make: (lab: Lab, c: Cluster) => Promise<void>): Promise<string[]> {
  const stop = at.file(`${name}.stop`);
  const traces = c.nodes.map((n) => at.file(`${name}-${n.name}.jsonl`));
  const ready = c.nodes.map((n) => at.file(`${name}-${n.name}.ready`));
  const attachMs = at.attachMs ?? 60_000;
  const exits = c.nodes.map((n, i) => {
    const child = spawn(process.execPath, [PKTPATH, 'record', '--node', n.name, '--out', traces[i]!, '--ready-file', ready[i]!,
      '--filter-netns', n.ns, '--filter-netns', n.pod.ns, `icmp or tcp or udp port ${CLUSTER.vxlanPort} or udp port ${CLUSTER.genevePort}`,
      // What merge pairs packets by on the wire besides the wire section --node turns on: the captured
      // bytes (told apart by their hash where keys are alike) and the tunnel's headers.
      '--output-packet', '--output-tunnel', ...(at.recordArgs ?? []),
      '--', 'sh', '-c', `while [ ! -e ${stop} ]; do sleep 0.05; done`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
  });
  try {
    const until = Date.now() + attachMs;
    while (!ready.every((r) => existsSync(r))) {
      if (Date.now() > until) throw new Error(`pktpath record did not attach on every node in ${attachMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await make(lab, c);
  } catch (e) {
    // Every pktpath gone (its programs with it) before the test's cleanup runs.
    writeFileSync(stop, '');
    await Promise.all(exits);
    throw e;
  }
  writeFileSync(stop, '');
  for (const [i, r] of (await Promise.all(exits)).entries()) assert.equal(r.code, 0, `${c.nodes[i]!.name}: ${r.stderr}`);
  rmSync(stop);
  return traces;
}

/** A TCP echo server in `ns` on `port`, once it listens. */
function tcpServer(lab: Lab, ns: string, port: number) {
  const child = lab.spawn(ns, [process.execPath, PEER, 'tcp-serve', String(port)]);
  return new Promise<typeof child>((resolve) => child.stdout!.once('data', () => resolve(child)));
}

/**
 * From the pod on node1 to `to` (node2's pod, or the Service on node1): a
 * ping, then a TCP exchange (each given `waitS` seconds, more where qemu emulates the CPU). One destination a run: merge follows an skb on
 * a node until a freeing point shows, and on one kernel a node's sent skb is
 * freed on another — an skb that node2 sent and a later one arriving there at
 * the same (recycled) address are one to merge, which then leaves the
 * arrival unpaired. A run's first exchange meets none of that.
 */
export function exchange(to: 'pod' | 'service', waitS = 1) {
  return async (lab: Lab, c: Cluster): Promise<void> => {
    const [addr, port] = to === 'pod' ? [c.nodes[1]!.pod.addr, CLUSTER.service.targetPort] : [CLUSTER.service.addr, CLUSTER.service.port];
    await lab.exec(c.nodes[0]!.pod.ns, ['ping', '-c', '1', '-W', String(waitS), addr], 20_000 * waitS);
    const server = await tcpServer(lab, c.nodes[1]!.pod.ns, CLUSTER.service.targetPort);
    const tcp = await lab.exec(c.nodes[0]!.pod.ns, [process.execPath, PEER, 'tcp-connect', addr, String(port), 'hello'], 20_000 * waitS);
    const listening = tcp.code === 0 ? '' : (await lab.exec(c.nodes[1]!.pod.ns, ['ss', '-tlnH'])).stdout;
    server.kill('SIGKILL');
    assert.equal(tcp.code, 0, `tcp-connect to ${addr}:${port}: exit ${tcp.code} ${tcp.stderr}; listening in ${c.nodes[1]!.pod.ns}: ${listening}`);
  };
}

/** `pktpath merge` of `inputs` into `out`: its lines, each checked against the schema. */
export async function merge(inputs: string[], out: string): Promise<Line[]> {
  const r = await run(process.execPath, [PKTPATH, 'merge', ...inputs, '--out', out], 120_000);
  assert.equal(r.code, 0, r.stderr);
  const text = readFileSync(out, 'utf8').trim().split('\n');
  for (const line of text) assert.equal(validateJsonLine(line), null, `merge output does not validate: ${line}`);
  return text.map((l) => JSON.parse(l) as Line);
}

const hopOf = (r: JsonRecord) => `${r.node} ${r.netns_name} ${r.iface} ${r.func} ${JSON.stringify(r.tuple)}`;

/**
 * The packets of a merged trace, each's records in the trace's order: its
 * journeys, a name split where pktpath's readers split it (NodePath: merge
 * follows an skb on a node until a freeing point shows, and TCP frees its
 * skbs unseen, so a later packet on the address may take the name on), and
 * TCP segments told apart by their flags as `normalize` tells them (the SYN
 * and SYN|ACK checked here are the first of theirs).
 */
export function journeys(lines: Line[]): JsonRecord[][] {
  const done: JsonRecord[][] = [];
  const open = new Map<string, { records: JsonRecord[]; path: NodePath }>();
  for (const r of eventsOf(lines)) {
    assert.ok(r.node !== undefined && r.journey !== undefined, `a merged record without node or journey: ${JSON.stringify(r)}`);
    let j = open.get(r.journey);
    const flags = j?.records.find((x) => x.tuple?.proto === 'tcp')?.tuple?.flags;
    if (j && (j.path.another(r.node, r.func) || (r.tuple?.proto === 'tcp' && flags !== undefined && r.tuple.flags !== flags))) {
      done.push(j.records);
      j = undefined;
    }
    if (!j) open.set(r.journey, (j = { records: [], path: new NodePath(r.node) }));
    j.records.push(r);
    if (j.path.note({ func: r.func, dropReason: r.drop_reason, caller: r.caller, node: r.node }) === 'end') {
      done.push(j.records);
      open.delete(r.journey);
    }
  }
  return [...done, ...[...open.values()].map((j) => j.records)];
}

/** A record of the tunnel's outer packet (VXLAN or Geneve). */
export const isTunnel = (r: JsonRecord) => r.tuple?.proto === 'udp' && (r.tuple.dport === CLUSTER.vxlanPort || r.tuple.dport === CLUSTER.genevePort);

/** A node's number (node1 is 1), as tunnelTo takes it. */
const numberOf = (n: ClusterNode) => Number(n.name.slice('node'.length));

/**
 * The `count` journeys whose first record is in the sending pod with
 * `saddr → daddr` (and TCP `flags`), each checked: pod, its node, the other
 * node, the other pod — every stretch once, in that order; no hop twice;
 * time never going back; on a tunnel, encapsulated on the sending node's
 * underlay device and decapsulated on the receiving node's. Returns them.
 */
export function checkJourneys(all: JsonRecord[][], c: Cluster, dir: 'there' | 'back', match: { proto: string; saddr: string; daddr: string; flags?: string }, count = 1): JsonRecord[][] {
  const [src, dst] = dir === 'there' ? [c.nodes[0]!, c.nodes[1]!] : [c.nodes[1]!, c.nodes[0]!];
  // A journey of frees alone (an skb the kernel made and freed unsent, a copy) is no packet's path.
  const found = all.filter((j) => j.some((r) => !FREEING_POINTS.has(r.func))).filter((j) => {
    const t = j[0]!.tuple;
    return j[0]!.netns_name === src.pod.ns && t !== null && t.proto === match.proto && t.saddr === match.saddr && t.daddr === match.daddr &&
      (match.flags === undefined || t.flags === match.flags);
  });
  const what = `${match.proto} ${match.saddr} > ${match.daddr}${match.flags ? ` ${match.flags}` : ''} (${dir})`;
  assert.equal(found.length, count, `${what}: ${found.length} journeys start in ${src.pod.ns}, not ${count}`);
  for (const j of found) checkJourney(j, src, dst, c.underlay, match.proto, what);
  return found;
}

function checkJourney(j: JsonRecord[], src: ClusterNode, dst: ClusterNode, underlay: Underlay, proto: string, what: string): void {
  const path = j.map((r) => `${r.node} ${r.netns_name} ${r.iface} ${r.func}`);
  const said = `${what}:\n  ${path.join('\n  ')}`;
  // The places it reached, in the order it first reached them. (A veth hands a packet to its peer inside
  // its transmit: the peer's receiving points come before the sender's last sending point.)
  const firsts = (keys: string[]) => [...new Set(keys)];
  assert.deepEqual(firsts(j.map((r) => `${r.node} ${r.netns_name}`)),
    [`${src.name} ${src.pod.ns}`, `${src.name} ${src.ns}`, `${dst.name} ${dst.ns}`, `${dst.name} ${dst.pod.ns}`], said);
  // Every hop once (a point of a device of a namespace of a node, with its tuple: a tunnel's two headers are two).
  const hops = j.map(hopOf);
  assert.equal(new Set(hops).size, hops.length, `a hop twice in ${said}`);
  for (let i = 1; i < j.length; i++) assert.ok(j[i]!.time >= j[i - 1]!.time, `time goes back at ${path[i]} in ${said}`);
  // The devices the packet crossed, in order, on each node (a Geneve device per peer: the one to the other node).
  const devices = (node: string, ns: string) => firsts(j.filter((r) => r.node === node && r.netns_name === ns).map((r) => r.iface.replace(/:\d+$/, '')));
  const out = src.tunnelTo(numberOf(dst));
  const into = dst.tunnelTo(numberOf(src));
  assert.deepEqual(devices(src.name, src.ns), underlay === 'routed' ? ['lxc0', 'eth0'] : ['lxc0', out, 'eth0'], said);
  assert.deepEqual(devices(dst.name, dst.ns), underlay === 'routed' ? ['eth0', 'lxc0'] : ['eth0', into, 'lxc0'], said);
  // Across the wire: nothing on the receiving node before the sender handed the packet to its underlay device.
  const handed = j.filter((r) => r.node === src.name && r.iface.startsWith('eth0:') && r.func === 'net_dev_start_xmit').at(-1);
  assert.ok(handed, `not handed to ${src.name}'s eth0: ${said}`);
  const arrived = j.find((r) => r.node === dst.name)!;
  assert.ok(arrived.time >= handed.time, `${dst.name} at ${arrived.time}, before ${src.name} sent it at ${handed.time}: ${said}`);
  if (underlay !== 'routed') {
    // Encapsulated on the sender's underlay device, decapsulated behind the receiver's.
    const wire = j.filter(isTunnel);
    assert.ok(wire.some((r) => r.node === src.name && r.iface.startsWith('eth0:') && r.tuple!.saddr === src.underlay && r.tuple!.daddr === dst.underlay), said);
    assert.ok(wire.some((r) => r.node === dst.name && r.iface.startsWith('eth0:')), said);
    assert.ok(j.some((r) => r.node === dst.name && r.iface.startsWith(`${into}:`) && r.tuple?.proto === proto), said);
  }
}

/**
 * The ping and the TCP opening to `daddr` (node2's pod, or the Service),
 * there and back: each one journey. A reply from behind the Service is turned
 * back on node1, where the sender sees it come from the Service address.
 */
export function checkExchange(lines: Line[], c: Cluster, daddr: string): JsonRecord[][] {
  const all = journeys(lines);
  const a = c.nodes[0]!.pod.addr;
  const b = c.nodes[1]!.pod.addr;
  checkJourneys(all, c, 'there', { proto: 'icmp', saddr: a, daddr });
  checkJourneys(all, c, 'there', { proto: 'tcp', saddr: a, daddr, flags: 'SYN' });
  for (const [proto, flags] of [['icmp', undefined], ['tcp', 'SYN|ACK']] as const) {
    const [back] = checkJourneys(all, c, 'back', { proto, saddr: b, daddr: a, ...(flags ? { flags } : {}) });
    const seenAs = back!.filter((r) => r.node === 'node1' && r.netns_name === c.nodes[0]!.pod.ns).at(-1)?.tuple?.saddr;
    assert.equal(seenAs, daddr, `${proto} reply as the sender sees it`);
  }
  return all;
}
