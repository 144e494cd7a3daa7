/**
 * libbpf's messages (including the verifier log on a failed load) are caught
 * here instead of going to stderr, so errors can quote the tail that matters.
 */
import { libbpfPrintEnabled, setLibbpfPrint } from './native/libbpf.js';

const LEVEL_INFO = 1;

const lines: string[] = [];
const MAX_LINES = 4000;
let installed = false;
let echoLevel = -1;
/** Where echoed messages go: stderr as they are, or the debug echo (escaped by its caller's rules). */
let echo: (text: string) => void = (text) => process.stderr.write(text);
/** The verifier's log level asked for every program loaded (0: only on a failure). */
let verifierLogLevel = 0;

/**
 * --debug: every message of libbpf, and the verifier's log of every program
 * loaded (successful loads too), handed to `out`, from the next object opened on.
 */
export function enableDebugLog(out: (text: string) => void): void {
  echo = out;
  verifierLogLevel = 1;
  installed = false;
  installLogCapture();
}

/** The log level to load programs with (BPF_LOG_LEVEL1 under --debug). */
export function debugVerifierLogLevel(): number {
  return verifierLogLevel;
}

/** Under --debug, the verifier's log of a program loaded from instructions (libbpf's loads print their own). */
export function debugVerifierLog(name: string, log: string): void {
  if (verifierLogLevel > 0 && log.trim() !== '') echo(`prog '${name}': -- BEGIN PROG LOAD LOG --\n${log}-- END PROG LOAD LOG --\n`);
}

export function installLogCapture(): void {
  if (installed) return;
  installed = true;
  echoLevel = process.env.PKTPATH_LIBBPF_DEBUG || verifierLogLevel > 0 ? 2 : -1;
  setLibbpfPrint((level, text) => {
    if (level <= echoLevel) echo(text);
    if (level > LEVEL_INFO) return;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      lines.push(line);
    }
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
  }, Math.max(echoLevel, LEVEL_INFO));
}

/** Operations under way with libbpf's messages off: they come back on when the last ends. */
let quietOps = 0;

function quietBegin(): void {
  if (quietOps++ === 0) libbpfPrintEnabled(false);
}

function quietEnd(): void {
  if (--quietOps === 0) libbpfPrintEnabled(true);
}

/**
 * Runs `fn` with libbpf's messages off, and again with them on if it threw:
 * loading an object, libbpf says thousands of things (each a call from C
 * into JavaScript: ~25 ms for the default plan), and only a failure's need
 * quoting. With --debug (or PKTPATH_LIBBPF_DEBUG) they stay on.
 */
export function quietlyOrAgain<T>(fn: () => T): T {
  installLogCapture();
  if (echoLevel >= 0) return fn();
  quietBegin();
  try {
    return fn();
  } catch {
    // Done again below, with the messages that explain the failure.
  } finally {
    quietEnd();
  }
  return fn();
}

/**
 * Turns libbpf's messages off for loads on other threads (left on with
 * PKTPATH_LIBBPF_DEBUG); the function returned turns them back on once no
 * quiet operation is left.
 */
export function quiet(): () => void {
  installLogCapture();
  if (echoLevel >= 0) return () => {};
  quietBegin();
  let ended = false;
  return () => {
    if (!ended) quietEnd();
    ended = true;
  };
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

/**
 * Lines of a refused load's log that say nothing of why: libbpf's frame
 * around the verifier log, the verifier's statistics, and libbpf's words on
 * the program and the object failing as a consequence.
 */
const FRAMING = /^-- (BEGIN|END)|processed \d+ insns|failed to load object|^prog '[^']*': (failed to load|BPF program load failed)/;

/** The verifier's (or else libbpf's) last word on why a load was refused, where its log has one. */
export function refusalReason(logTail: readonly string[]): string | undefined {
  return logTail.filter((l) => !FRAMING.test(l.trim())).slice(-1)[0]?.trim();
}

/** A verifier line refusing a helper: the program type may not call it, or the kernel has none of that name. */
const HELPER_REFUSED = /(?:cannot use helper|unknown func) (bpf_\w+)/;

/** Whether a refused load's log says the program may not call one of `helpers` (named as `bpf_get_current_comm`). */
export function refusesHelper(logTail: readonly string[], helpers: readonly string[]): boolean {
  return logTail.some((l) => {
    const m = HELPER_REFUSED.exec(l);
    return m !== null && helpers.includes(m[1]!);
  });
}
