/**
 * `pktpath cleanup`: removes what a pktpath session could leave behind. BPF
 * links are owned by file descriptors and go with the process; the one thing
 * that could outlive it is --output-nft's table (`inet pktpath_trace_PID`)
 * on a kernel without owner tables. Tables of live sessions are left alone.
 */
import { tracedNamespaces } from '../kernel/view.js';
import { cleanupTraceTables } from '../trace/nft.js';
import { EXIT_OK, requirePrivileges } from './exit.js';

export async function cleanup(): Promise<number> {
  requirePrivileges();
  const removed = cleanupTraceTables(tracedNamespaces());
  process.stderr.write(removed.length > 0
    ? `pktpath: removed ${removed.length} stale nft ${removed.length === 1 ? 'table' : 'tables'}: ${removed.join(', ')}\n`
    : 'pktpath: nothing to clean up (BPF links go with their process; no stale nft tables)\n');
  return EXIT_OK;
}
