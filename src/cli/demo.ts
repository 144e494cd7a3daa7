/**
 * `pktpath demo`: two scenes, each traced through the same path as a normal
 * run. First two namespaces joined by a veth pair, with ping, UDP and TCP
 * between them; then a CNI-style node (src/lab/cni.ts) where a tc program
 * redirects into a pod, a policy program drops one UDP port and an nft rule
 * another, and a routed pod's gateway is answered by no one (proxy ARP off on
 * its host-side veth): each explained. Everything it made is removed.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingPrivileges } from '../kernel/privileges.js';
import { CNI, cniNode } from '../lab/cni.js';
import { Lab, twoHosts } from '../lab/lab.js';
import { summaryLine } from '../output/summary.js';
import { probesDir } from '../trace/builds.js';
import type { TraceSession } from '../trace/session.js';
import { type RawOptions, buildConfig } from './trace-config.js';
import { EXIT_FAILURE, EXIT_OK } from './exit.js';
import { prepareTrace, runTrace } from './run.js';

const PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../lab/peer.js');
const say = (line: string) => process.stderr.write(`demo: ${line}\n`);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Traces what `traffic` sends, in the namespaces `names` only (what runs elsewhere on this machine is not the demo's business). */
async function traceScene(options: RawOptions, names: string[], traffic: () => Promise<void>): Promise<number> {
  const cfg = buildConfig(options, []);
  const prepared = prepareTrace(cfg, (name) => names.includes(name));
  let session: TraceSession | null = null;
  let attached: () => void = () => {};
  const ready = new Promise<void>((resolve) => (attached = resolve));
  const running = runTrace(cfg, prepared, {
    say: (line) => process.stderr.write(`${line}\n`),
    started: (s) => (session = s),
    attached: () => attached(),
  });
  // Traffic once everything is attached (or not at all, when attaching failed).
  if (await Promise.race([ready.then(() => true), running.then(() => false, () => false)])) await traffic();
  (session as TraceSession | null)?.stop('demo done');
  const summary = await running;
  process.stderr.write(`${summaryLine(summary)}\n`);
  return summary.events;
}

async function twoHostsScene(lab: Lab): Promise<number> {
  const { a, b } = twoHosts(lab);
  say(`namespaces ${a} (192.0.2.1) and ${b} (192.0.2.2), joined by veth-a/veth-b`);
  const udp = lab.spawn(b, [process.execPath, PEER, 'udp-serve', '5353']);
  const tcp = lab.spawn(b, [process.execPath, PEER, 'tcp-serve', '8080']);
  await Promise.all([udp, tcp].map((c) => new Promise((r) => c.stdout!.once('data', r))));
  return traceScene({ filterIp: '192.0.2.2', outputTuple: true, outputTcpFlags: true, outputMeta: true }, [a, b], async () => {
    say('ping 192.0.2.1 → 192.0.2.2');
    await lab.exec(a, ['ping', '-c', '1', '-W', '2', '192.0.2.2']);
    await pause(200);
    say('UDP 192.0.2.1 → 192.0.2.2:5353');
    await lab.exec(a, [process.execPath, PEER, 'udp-send', '192.0.2.2', '5353', 'hello']);
    await pause(200);
    say('TCP 192.0.2.1 → 192.0.2.2:8080 (connect, send, echo, close)');
    await lab.exec(a, [process.execPath, PEER, 'tcp-connect', '192.0.2.2', '8080', 'hello']);
    await pause(300);
  });
}

async function cniScene(lab: Lab): Promise<number> {
  const node = await cniNode(lab, { objects: probesDir(), routedPod: { proxyArp: false } });
  const podC = node.podC!;
  say(`a CNI-style node: ${node.host} with pods ${node.podA} (${CNI.podA.addr}), ${node.podB} (${CNI.podB.addr}) and ${podC} (${CNI.podC.addr}/32)`);
  say(`  lxc-a ingress: cni_redirect (tcx link) sends packets for ${CNI.podB.addr} straight into pod B (bpf_redirect_peer)`);
  say(`  lxc-b ingress: cni_policy (tc filter … bpf da) drops UDP to port ${CNI.tcDroppedPort}`);
  say(`  host forward:  nft rule "${CNI.nftComment}"`);
  say(`  lxc-c:         pod C's gateway ${CNI.podC.gateway} is no one's: only proxy ARP on lxc-c could answer for it, and it is off`);
  const options: RawOptions = { filterIp: CNI.podA.addr, outputNft: true, groupBy: 'skb', explain: true };
  return traceScene(options, [node.host, node.podA, node.podB, podC], async () => {
    say(`ping ${CNI.podA.addr} → ${CNI.podB.addr}: the request skips the host's stack, the reply does not`);
    await lab.exec(node.podA, ['ping', '-c', '1', '-W', '2', CNI.podB.addr]);
    await pause(200);
    for (const port of [CNI.tcDroppedPort, CNI.nftDroppedPort]) {
      say(`UDP ${CNI.podB.addr} → ${CNI.podA.addr}:${port}`);
      await lab.exec(node.podB, [process.execPath, PEER, 'udp-send', CNI.podA.addr, String(port), 'hello']);
      await pause(200);
    }
    // A silent failure: no drop on any rule or program, the pod's ARP is never answered.
    say(`ping ${CNI.podC.addr} → ${CNI.podA.addr}: pod C asks for its gateway's address, and waits`);
    await lab.exec(podC, ['ping', '-c', '1', '-W', '5', CNI.podA.addr]);
    await pause(300);
  });
}

export async function demo(): Promise<number> {
  const missing = missingPrivileges();
  if (missing) {
    process.stderr.write(`pktpath: the demo needs root (missing ${missing}); run it with sudo\n`);
    return EXIT_FAILURE;
  }
  const lab = new Lab('ppdemo');
  const cleanup = () => lab.cleanup();
  process.once('SIGINT', cleanup);
  try {
    say('scene 1: two hosts');
    const first = await twoHostsScene(lab);
    say('scene 2: the datapath of a CNI explained (--output-nft --group-by skb --explain)');
    const second = await cniScene(lab);
    return first > 0 && second > 0 ? EXIT_OK : EXIT_FAILURE;
  } finally {
    process.off('SIGINT', cleanup);
    cleanup();
    say('removed the namespaces');
  }
}
