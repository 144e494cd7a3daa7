/**
 * `pktpath cleanup`: removes what a pktpath session could leave behind. BPF
 * links are owned by file descriptors and go with the process; what can
 * outlive it is --output-nft's table (`inet pktpath_trace_PID`) on a kernel
 * without owner tables, and the cls_bpf filters (`pktpath_PID`) that observe
 * tc on kernels without tcx. Those of live sessions are left alone.
 */
import { tracedNamespaces } from '../kernel/view.js';
import { escapeText } from '../output/escape.js';
import { awaitExitOf, removeStaleFilters } from '../trace/clsact.js';
import { cleanupTraceTables } from '../trace/nft.js';
import { EXIT_OK, requirePrivileges } from './exit.js';

export interface CleanupOptions {
  /** A session's watchdog: wait for that pid to end first, then clean up quietly. */
  after?: string;
}

export async function cleanup(opts: CleanupOptions = {}): Promise<number> {
  requirePrivileges();
  if (opts.after !== undefined) {
    await awaitExitOf(Number(opts.after));
    for (const netns of tracedNamespaces()) removeStaleFilters(netns);
    return EXIT_OK;
  }
  const namespaces = tracedNamespaces();
  const tables = cleanupTraceTables(namespaces);
  const filters = namespaces.flatMap(removeStaleFilters);
  if (tables.length > 0) process.stderr.write(`pktpath: removed ${tables.length} stale nft ${tables.length === 1 ? 'table' : 'tables'}: ${escapeText(tables.join(', '))}\n`);
  if (filters.length > 0) process.stderr.write(`pktpath: removed ${filters.length} stale tc ${filters.length === 1 ? 'filter' : 'filters'}: ${escapeText(filters.join(', '))}\n`);
  if (tables.length + filters.length === 0) {
    process.stderr.write('pktpath: nothing to clean up (BPF links go with their process; no stale nft tables or tc filters)\n');
  }
  return EXIT_OK;
}
