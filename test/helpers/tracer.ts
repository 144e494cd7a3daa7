/** Runs the real pktpath binary for end-to-end tests and collects its JSON output. */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { root } from './probe-btf.js';
import { validateJsonLine } from './schema.js';
import type { JsonRecord } from '../../src/output/json.js';

export const PKTPATH = join(root, 'bin/pktpath');

/** An event line of --output-json, as src/output/json.ts defines it (lost records are filtered out). */
export type JsonEvent = JsonRecord & { type?: undefined };

export interface TracerRun {
  child: ChildProcess;
  /** Sends SIGINT and resolves with what the tracer wrote. */
  stop(): Promise<{ code: number | null; events: JsonEvent[]; stdout: string; stderr: string }>;
}

/**
 * `pktpath ARGS` as [command, arguments] in a network namespace of its own
 * (unshare execs it: the pid is pktpath's). It observes that empty one and
 * the test's named namespaces, never the machine's interfaces.
 */
export function pktpathPrivately(args: string[]): [string, string[]] {
  return ['unshare', ['--net', '--', process.execPath, PKTPATH, ...args]];
}

/**
 * Starts pktpath with `args` (JSON output added) and resolves once it has
 * attached. `prefix` runs it through another command (e.g. `ip netns exec NS`,
 * so that the test's namespace is pktpath's own); `env` is added to the environment.
 */
export function startTracer(args: string[], timeoutMs = 30_000, prefix: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<TracerRun> {
  const [cmd, argv] = prefix.length > 0
    ? [prefix[0]!, [...prefix.slice(1), process.execPath, PKTPATH, '--output-json', ...args]]
    : pktpathPrivately(['--output-json', ...args]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pktpath did not attach in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/pktpath: attached /.test(stderr)) {
        clearTimeout(timer);
        resolve({
          child,
          async stop() {
            // The ring is polled every few ms; let the last packets arrive.
            await new Promise((r) => setTimeout(r, 300));
            child.kill('SIGINT');
            const code = await exited;
            const lines = stdout.split('\n').filter(Boolean);
            // Every line pktpath writes must validate against the published schema.
            for (const line of lines) {
              const problem = validateJsonLine(line);
              if (problem) throw new Error(`output line does not validate against schema/event.v1.json: ${problem}\n${line}`);
            }
            const events = lines.map((l) => JSON.parse(l) as JsonEvent).filter((e) => e.type === undefined);
            return { code, events, stdout, stderr };
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      if (!/pktpath: attached /.test(stderr)) reject(new Error(`pktpath exited with ${code} before attaching:\n${stderr}`));
    });
  });
}

/** Runs pktpath to completion (for usage errors and short runs); `env` is added to the environment. */
export function runPktpath(args: string[], opts: { prefix?: string[]; env?: NodeJS.ProcessEnv } = {}): { code: number; stdout: string; stderr: string } {
  const cmd = [...(opts.prefix ?? []), process.execPath, PKTPATH, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, env: { ...process.env, ...opts.env },
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** BPF programs of pktpath still loaded in the kernel (by name). */
export function ourPrograms(): string[] {
  const out = execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  const progs = JSON.parse(out) as Array<{ name?: string }>;
  return progs.map((p) => p.name ?? '').filter((n) => n.startsWith('pktpath_') || n.startsWith('feature_'));
}

/** Waits until the kernel has released every program of ours (release is asynchronous). */
export async function waitNoPrograms(timeoutMs = 10_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  let left = ourPrograms();
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    left = ourPrograms();
  }
  return left;
}

/** Indices of `wanted` found in order within `seq` (a subsequence); throws naming the first missing. */
export function assertSubsequence(seq: string[], wanted: string[]): void {
  let i = 0;
  for (const w of wanted) {
    const at = seq.indexOf(w, i);
    if (at < 0) {
      throw new Error(`expected '${w}' after position ${i} in the path:\n  ${seq.join(' → ')}\nwanted: ${wanted.join(' → ')}`);
    }
    i = at + 1;
  }
}
