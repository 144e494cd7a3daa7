/**
 * `pktpath record --out FILE [options] [expression] -- COMMAND [ARGS…]`:
 * attach, run the command that makes the traffic, stop when it has exited
 * and the last records have drained, and leave a JSON-lines trace that starts
 * with a header saying what made it. The exit status is the command's
 * (127 when it cannot be run), or 1 when tracing itself failed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import { summaryLine } from '../output/summary.js';
import type { TraceSession } from '../trace/session.js';
import { type RawOptions, buildConfig } from './trace-config.js';
import { commandEnvironment, diesWithPktpath, unrunnable } from './environment.js';
import { EXIT_FAILURE, requirePrivileges } from './exit.js';
import { nodeName } from './node-name.js';
import { openPods, prepareTrace, runTrace, traceHeader } from './run.js';
import { UsageError, parseCount } from './values.js';

export interface RecordOptions extends RawOptions {
  out?: string;
  drain?: string;
  node?: string;
}

/** Exit statuses of a command that cannot be found, or found but not run, as a shell gives them. */
const EXIT_NOT_FOUND = 127;
const EXIT_NOT_EXECUTABLE = 126;

/** The operands commander collected, split at `--`: the filter expression before, the command after. */
export function splitCommand(operands: string[], argv: string[]): { expression: string[]; command: string[] } {
  const dashes = argv.indexOf('--');
  if (dashes < 0) throw new UsageError('record: name the command that makes the traffic after --, e.g. -- ping -c 1 192.0.2.2');
  const after = argv.length - dashes - 1;
  const command = operands.slice(operands.length - after);
  if (command.length === 0) throw new UsageError('record: no command after --');
  return { expression: operands.slice(0, operands.length - after), command };
}

function statusOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? os.constants.signals[signal] ?? 0 : 0);
}

export async function record(opts: RecordOptions, operands: string[], argv: string[]): Promise<number> {
  if (opts.out === undefined || opts.out.trim() === '') throw new UsageError('record: --out FILE is required');
  if (opts.outputFile !== undefined) throw new UsageError('record: the trace goes to --out; --output-file does not combine with it');
  const drainMs = parseCount('--drain', opts.drain ?? '250');
  const { expression, command } = splitCommand(operands, argv);
  // A trace named for its node is one of several to merge: what pairs its packets with the other nodes' goes in.
  const forMerge = opts.node !== undefined ? { outputWire: true, outputTunnel: true } : {};
  const cfg = buildConfig({ ...opts, ...forMerge, outputJson: true, outputFile: opts.out }, expression);
  const node = nodeName(opts.node);
  requirePrivileges();
  const say = (line: string) => process.stderr.write(`${line}\n`);
  // A command that cannot run is told before anything is attached or written, with the shell's status.
  const cannot = unrunnable(command[0]!);
  if (cannot) {
    say(`pktpath: ${command[0]}: ${cannot.why}`);
    return cannot.status;
  }
  const pods = await openPods(cfg, say);
  const prepared = prepareTrace(cfg, undefined, pods);

  let session: TraceSession | null = null;
  let child: ChildProcess | null = null;
  /** The command's exit status, once it has one. */
  let status: number | null = null;
  const running = () => child !== null && child.exitCode === null && child.signalCode === null;
  // Signals go to the command: the trace ends when it does. Without one running, they end the trace.
  const forward = (signal: NodeJS.Signals) => () => {
    if (running()) child!.kill(signal);
    else session?.stop('signal');
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
  for (const [sig, fn] of handlers) process.on(sig, fn);
  try {
    const summary = await runTrace(cfg, prepared, {
      say,
      fileFlag: '--out',
      header: (notObserved) => traceHeader(prepared, argv.slice(2), command, notObserved, node),
      started: (s) => (session = s),
      attached: () => {
        const run = diesWithPktpath(command);
        child = spawn(run[0]!, run.slice(1), { stdio: ['inherit', 'inherit', 'inherit'], env: commandEnvironment() });
        child.once('error', (e: NodeJS.ErrnoException) => {
          say(`pktpath: ${command[0]}: ${e.code === 'ENOENT' ? 'command not found' : e.message}`);
          status = e.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
          session?.stop('command failed');
        });
        child.once('exit', (code, signal) => {
          status = statusOf(code, signal);
          // Records of the command's last packets may still be in the ring.
          setTimeout(() => session?.stop('command exited'), drainMs);
        });
      },
    });
    say(summaryLine(summary));
    if (status === null) {
      // The trace ended first (--duration, its output failed): the trace is not whole.
      say(`pktpath: the trace stopped (${summary.stoppedBy}) before ${command[0]} exited`);
      return EXIT_FAILURE;
    }
    return status;
  } finally {
    for (const [sig, fn] of handlers) process.off(sig, fn);
    if (running()) child!.kill('SIGKILL');
    pods.close();
  }
}
