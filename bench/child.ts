/** The other programs a bench runs beside pktpath (tcpdump, bpftrace, pktpath itself): ready, and stopped. */
import type { ChildProcess } from 'node:child_process';

/**
 * Waits for output of the child's (stderr or stdout) that matches `ready`,
 * then stops listening: what it prints after is the caller's.
 */
export function whenReady(child: ChildProcess, ready: RegExp, what: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const done = () => {
      clearTimeout(timer);
      child.stderr?.off('data', look);
      child.stdout?.off('data', look);
      child.off('exit', exited);
    };
    const look = (d: Buffer) => {
      out += d.toString();
      if (!ready.test(out)) return;
      done();
      resolve();
    };
    const exited = () => {
      done();
      reject(new Error(`${what} exited:\n${out}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} did not start:\n${out}`));
    }, timeoutMs);
    child.stderr?.on('data', look);
    child.stdout?.on('data', look);
    child.on('exit', exited);
  });
}

/** SIGINT, and its exit. */
export async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGINT');
  await exited;
}
