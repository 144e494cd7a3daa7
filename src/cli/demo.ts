/**
 * `pktpath demo`: builds two namespaces joined by a veth pair, sends ping, UDP
 * and TCP between them, traces it through the same path as a normal run, and
 * removes everything it made.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingPrivileges } from '../kernel/privileges.js';
import { Lab, twoHosts } from '../lab/lab.js';
import { summaryLine } from '../output/summary.js';
import type { TraceSession } from '../trace/session.js';
import { buildConfig } from './config.js';
import { EXIT_FAILURE, EXIT_OK } from './exit.js';
import { prepare, runTrace } from './run.js';

const PEER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../lab/peer.js');
const say = (line: string) => process.stderr.write(`demo: ${line}\n`);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    const { a, b } = twoHosts(lab);
    say(`namespaces ${a} (192.0.2.1) and ${b} (192.0.2.2), joined by veth-a/veth-b`);
    const udp = lab.spawn(b, [process.execPath, PEER, 'udp-serve', '5353']);
    const tcp = lab.spawn(b, [process.execPath, PEER, 'tcp-serve', '8080']);
    await Promise.all([udp, tcp].map((c) => new Promise((r) => c.stdout!.once('data', r))));

    const cfg = buildConfig({ filterIp: '192.0.2.2', outputTuple: true, outputTcpFlags: true, outputMeta: true }, []);
    // Only the demo's own namespaces: what runs elsewhere on this machine is not its business.
    const prepared = prepare(cfg, (name) => name === a || name === b);
    let session: TraceSession | null = null;
    const running = runTrace(cfg, prepared, {
      say: (line) => process.stderr.write(`${line}\n`),
      started: (s) => (session = s),
    });
    // The session attaches before its first await.
    await new Promise<void>((resolve) => setImmediate(resolve));

    say('ping 192.0.2.1 → 192.0.2.2');
    await lab.exec(a, ['ping', '-c', '1', '-W', '2', '192.0.2.2']);
    await pause(200);
    say('UDP 192.0.2.1 → 192.0.2.2:5353');
    await lab.exec(a, [process.execPath, PEER, 'udp-send', '192.0.2.2', '5353', 'hello']);
    await pause(200);
    say('TCP 192.0.2.1 → 192.0.2.2:8080 (connect, send, echo, close)');
    await lab.exec(a, [process.execPath, PEER, 'tcp-connect', '192.0.2.2', '8080', 'hello']);
    await pause(300);
    (session as TraceSession | null)?.stop('demo done');
    const summary = await running;
    process.stderr.write(`${summaryLine(summary)}\n`);
    return summary.events > 0 ? EXIT_OK : EXIT_FAILURE;
  } finally {
    process.off('SIGINT', cleanup);
    cleanup();
    say('removed the namespaces');
  }
}
