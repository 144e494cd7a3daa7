/**
 * What an idle trace costs the host: pktpath attached in a network namespace
 * of its own where nothing happens, narrowed to it (and no named namespace:
 * /run/netns is an empty mount of its own), its threads' context switches counted from
 * /proc over a few seconds. A switch is a wake-up: the main thread's are the
 * ring reader's polls and timers. Prints wake-ups per second; asserts nothing.
 *
 *   node dist/bench/idle.js [seconds, default 10] [pktpath binary] [pktpath args…]
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stopped, whenReady } from './child.js';

const SECONDS = Number(process.argv[2] ?? 10);
const PKTPATH = process.argv[3] ?? fileURLToPath(new URL('../../bin/pktpath', import.meta.url));
const ARGS = process.argv.length > 4 ? process.argv.slice(4) : [];

/** Voluntary and involuntary context switches of each thread of `pid`, by thread id. */
function switches(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const n = [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
      out.set(Number(tid), n);
    } catch {
      // A thread that ended meanwhile.
    }
  }
  return out;
}

async function main(): Promise<void> {
  // unshare execs pktpath through sh: the pid is pktpath's. Narrowed to its own namespace: the host's skbs
  // (its sockets' among them) pass the skb tracepoints too, and would make it busy, not idle.
  const script = 'mkdir -p /run/netns && mount -t tmpfs none /run/netns && exec "$@" --filter-netns inode:$(stat -L -c %i /proc/self/ns/net)';
  const child = spawn('unshare', ['--net', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
    process.execPath, PKTPATH, '--output-file', '/dev/null', ...ARGS], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await whenReady(child, /attached/, 'pktpath');
    await new Promise((r) => setTimeout(r, 1000));
    const pid = child.pid!;
    const before = switches(pid);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const after = switches(pid);
    let all = 0;
    for (const [tid, n] of after) all += n - (before.get(tid) ?? 0);
    const main = (after.get(pid) ?? 0) - (before.get(pid) ?? 0);
    console.log(`idle ${ARGS.join(' ') || '(default points)'}: ${(all / SECONDS).toFixed(1)} wake-ups/s ` +
      `(main thread ${(main / SECONDS).toFixed(1)}/s, ${after.size} threads), over ${SECONDS} s`);
  } finally {
    await stopped(child);
  }
}

await main();
