/**
 * --filter-xdp-expr and --output-xdp-metadata (pwru's): the expression
 * language of --filter-skb-expr and --output-skb-metadata on the xdp_buff of
 * the XDP programs --filter-trace-xdp traces. The filter is compiled with the
 * others (./filter.ts) and runs in the XDP program probes; both need fentry
 * on those programs, so a kernel that refuses it refuses them.
 */
import { compileSkbFetch } from '../filter/skb-expr.js';
import { XDP_ROOT } from '../filter/skb-expr-resolve.js';
import type { BackendAvailability } from '../kernel/functions.js';
import { withBtf } from './filter.js';
import type { TraceConfig } from './trace-config.js';
import { UsageError } from './values.js';

/** The flags given, as they are named in messages. */
function given(cfg: TraceConfig): string[] {
  return [...(cfg.filter.xdpExpr !== null ? ['--filter-xdp-expr'] : []), ...(cfg.output.xdpMetadata ? ['--output-xdp-metadata'] : [])];
}

/**
 * Checks what was given (usage errors: without --filter-trace-xdp, a wrong
 * field), then refuses the run where the XDP programs' fentry is refused,
 * or --output-xdp-metadata, which the XDP program probe does not carry yet
 * (Errors: exit 1).
 */
export function checkXdpExpressions(cfg: TraceConfig, fentry: BackendAvailability | undefined): void {
  const flags = given(cfg);
  if (flags.length === 0) return;
  if (!cfg.attach.tracePrograms.has('xdp')) {
    throw new UsageError(`${flags[0]}: reads the xdp_buff of the XDP programs --filter-trace-xdp traces: add --filter-trace-xdp`);
  }
  const meta = cfg.output.xdpMetadata;
  if (meta) withBtf('--output-xdp-metadata', (btf) => compileSkbFetch(meta, btf, XDP_ROOT));
  if (!fentry?.ok) {
    throw new Error(`${flags.join(', ')}: ${flags.length > 1 ? 'read' : 'reads'} the xdp_buff of traced XDP programs through fentry, ` +
      `which this kernel refuses (${fentry?.detail ?? 'not tried'}); \`pktpath doctor\` shows what works`);
  }
  if (meta) {
    throw new Error('--output-xdp-metadata: pktpath\'s probe of XDP programs does not carry it yet; --filter-trace-xdp traces the programs and their verdicts without');
  }
}
