/**
 * What the guest test files share: the kernel's name and function backends,
 * and a traced ping between two namespaces. Run inside a stock kernel booted
 * under qemu (scripts/test-kernels.sh); the guest is private, so everything
 * it traces is the test's.
 */
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { programs } from '../../src/bpf/loaded.js';
import { functionBackends } from '../../src/kernel/functions.js';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { type JsonEvent, startTracer } from '../helpers/tracer.js';

export const KERNEL = process.env.PKTPATH_GUEST_KERNEL ?? 'this kernel';
export const BACKENDS = functionBackends().filter((b) => b.ok).map((b) => b.backend);
export const OBJECTS = new URL('../../../probes/build', import.meta.url).pathname;
/** TCG is slow: attaching takes seconds here. */
export const ATTACH_MS = 240_000;

/** The running kernel's release is at least major.minor. */
export const since = (major: number, minor: number) => {
  const m = /^(\d+)\.(\d+)/.exec(release())!;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
};

export const pktpathPrograms = () => programs().filter((p) => p.name.startsWith('pktpath_')).length;

/** pktpath on the echo requests to B while `traffic` runs between two fresh namespaces. */
export async function traced(args: string[], traffic: (lab: Lab, a: string, b: string) => Promise<void>): Promise<{ events: JsonEvent[]; stderr: string }> {
  const lab = new Lab('pg');
  try {
    const { a, b } = twoHosts(lab);
    const run = await startTracer(['--filter-dst-ip', '192.0.2.2', ...args], ATTACH_MS);
    // The tracer is stopped whatever the traffic did: a tracer left running keeps the guest's test process alive.
    const sent = await traffic(lab, a, b).then(() => null, (e: unknown) => e);
    const r = await run.stop();
    if (sent) throw sent;
    assert.equal(r.code, 0, r.stderr);
    return { events: r.events, stderr: r.stderr };
  } finally {
    lab.cleanup();
  }
}

export const ping = async (lab: Lab, a: string) => {
  await lab.exec(a, ['ping', '-c', '2', '-i', '0.3', '-W', '2', '192.0.2.2']);
};
