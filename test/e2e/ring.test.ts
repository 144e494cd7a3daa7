/**
 * The ring reader: asleep while nothing happens (no poll timer), awake for
 * the first record after a quiet, and gone promptly on a signal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startTracer } from '../helpers/tracer.js';

/**
 * A network namespace of its own, the trace narrowed to it, and no named ones (an empty /run/netns of its
 * own): nothing to see but what the test does (the skb tracepoints see every namespace's skbs).
 */
const ALONE = ['unshare', '--net', '--mount', '--propagation', 'private', 'sh', '-c',
  'mkdir -p /run/netns && mount -t tmpfs none /run/netns && exec "$@" --filter-netns inode:$(stat -L -c %i /proc/self/ns/net)', 'sh'];

/** Context switches of a thread: each is a wake-up. */
function switches(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
}

test('an idle trace sleeps (its main thread wakes a few times a second, not 200), and sees the first packet after the quiet', async () => {
  const tracer = await startTracer(['--filter-proto', 'icmp'], 30_000, ALONE);
  const pid = tracer.child.pid!;
  let perSecond = NaN;
  let stopped: Awaited<ReturnType<typeof tracer.stop>>;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const before = switches(pid);
    await new Promise((r) => setTimeout(r, 2000));
    perSecond = (switches(pid) - before) / 2;
    execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', 'link', 'set', 'lo', 'up']);
    execFileSync('nsenter', ['-t', String(pid), '-n', 'ping', '-c', '1', '-W', '1', '127.0.0.1'], { stdio: 'ignore' });
  } finally {
    stopped = await tracer.stop();
  }
  const { code, events, stderr } = stopped;
  assert.equal(code, 0, stderr);
  // Following namespaces still looks every 250 ms; the ring was read every 5 ms.
  assert.ok(perSecond < 50, `${perSecond} wake-ups a second while idle`);
  assert.ok(events.some((e) => e.tuple?.daddr === '127.0.0.1'), `the ping: ${events.length} events\n${stderr}`);
});
