/**
 * --filter-xdp-expr and --output-xdp-metadata (pwru's): the expression
 * language of --filter-skb-expr and --output-skb-metadata on the xdp_buff of
 * the XDP programs --filter-trace-xdp traces. The filter is compiled with the
 * others (./filter.ts) and the fields with the sections
 * (src/output/sections/xdp-meta.ts); both run in the XDP program probes,
 * which need fentry on those programs: a kernel that refuses it refuses them.
 */
import { compileSkbFetch } from '../filter/skb-expr.js';
import { XDP_ROOT } from '../filter/skb-expr-resolve.js';
import type { BackendAvailability } from '../kernel/functions.js';
import { optionName } from '../output/sections/registry.js';
import { xdpMetaSection } from '../output/sections/xdp-meta.js';
import { withBtf } from './filter.js';
import type { TraceConfig } from './trace-config.js';
import { UsageError } from './values.js';

/** --output-xdp-metadata's fields, as parsed; undefined where not given. */
function metadataFields(cfg: TraceConfig): string[] | undefined {
  return cfg.output.sectionValues[optionName(xdpMetaSection.options[0]!.flags)] as string[] | undefined;
}

/** The flags given, as they are named in messages. */
function given(cfg: TraceConfig): string[] {
  return [...(cfg.filter.xdpExpr !== null ? ['--filter-xdp-expr'] : []), ...(metadataFields(cfg) ? ['--output-xdp-metadata'] : [])];
}

/**
 * Checks what was given (usage errors: without --filter-trace-xdp, a wrong
 * field), then refuses the run where the XDP programs' fentry is refused
 * (an Error: exit 1).
 */
export function checkXdpExpressions(cfg: TraceConfig, fentry: BackendAvailability | undefined): void {
  const flags = given(cfg);
  if (flags.length === 0) return;
  if (!cfg.attach.tracePrograms.has('xdp')) {
    throw new UsageError(`${flags[0]}: reads the xdp_buff of the XDP programs --filter-trace-xdp traces: add --filter-trace-xdp`);
  }
  const meta = metadataFields(cfg);
  if (meta) withBtf('--output-xdp-metadata', (btf) => compileSkbFetch(meta, btf, XDP_ROOT));
  if (!fentry?.ok) {
    throw new Error(`${flags.join(', ')}: ${flags.length > 1 ? 'read' : 'reads'} the xdp_buff of traced XDP programs through fentry, ` +
      `which this kernel refuses (${fentry?.detail ?? 'not tried'}); \`pktpath doctor\` shows what works`);
  }
}
