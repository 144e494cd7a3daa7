/** pktpath's exit codes (a normal stop, a runtime failure, bad usage or input), and leaving with one. */
import { missingPrivileges } from '../kernel/privileges.js';
import { escapeMessage } from '../output/escape.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** One line on stderr, then exit. */
export function fail(code: number, message: string): never {
  process.stderr.write(`pktpath: ${escapeMessage(message)}\n`);
  process.exit(code);
}

/** Exits 1 with a remedy unless this process may load and attach probes. */
export function requirePrivileges(): void {
  const missing = missingPrivileges();
  if (missing) fail(EXIT_FAILURE, `needs root to load its probes (missing ${missing}); run it with sudo`);
}
