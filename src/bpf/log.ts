/**
 * libbpf's messages (including the verifier log on a failed load) are caught
 * here instead of going to stderr, so errors can quote the tail that matters.
 */
import { PrintFn, c, cString, koffi } from './native.js';
import { libbpf } from './native.js';

const LEVEL_INFO = 1;

const lines: string[] = [];
const MAX_LINES = 4000;
let installed = false;
let echoLevel = -1;

function onPrint(level: number, fmt: string, args: unknown): number {
  const out: unknown[] = [null];
  const n = c.vasprintf(out, fmt, args) as number;
  if (n < 0 || out[0] === null) return 0;
  const text = cString(out[0] as bigint);
  c.free(out[0]);
  if (level <= echoLevel) process.stderr.write(text);
  if (level > LEVEL_INFO) return 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    lines.push(line);
  }
  if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
  return 0;
}

export function installLogCapture(): void {
  if (installed) return;
  installed = true;
  const cb = koffi.register(onPrint, koffi.pointer(PrintFn));
  libbpf.set_print(cb);
  if (process.env.PKTPATH_LIBBPF_DEBUG) echoLevel = 2;
}

/** Marks where the messages of one operation start. */
export function logMark(): number {
  return lines.length;
}

/** The last lines since `mark`, verifier log first-class. */
export function logTailSince(mark: number, max = 20): string[] {
  const since = lines.slice(Math.min(mark, lines.length));
  return since.slice(-max).map((l) => l.replace(/^libbpf: /, ''));
}

