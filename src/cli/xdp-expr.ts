/**
 * --filter-xdp-expr and --output-xdp-metadata (pwru's): the expression
 * language of --filter-skb-expr and --output-skb-metadata on the xdp_buff of
 * the XDP programs --filter-trace-xdp traces. Checked against the kernel's
 * BTF like theirs (a wrong field is a usage error with its column); they
 * need fentry on those programs, so a kernel that refuses it refuses them.
 */
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { SkbExprError, compileSkbExpr, compileSkbFetch } from '../filter/skb-expr.js';
import type { ExprRoot } from '../filter/skb-expr-resolve.js';
import type { BackendAvailability } from '../kernel/functions.js';
import type { TraceConfig } from './trace-config.js';
import { UsageError } from './values.js';

export const XDP_ROOT: ExprRoot = { name: 'xdp', struct: 'xdp_buff', example: 'xdp->data' };

/** The flags given, as they are named in messages. */
function given(cfg: TraceConfig): string[] {
  return [...(cfg.filter.xdpExpr !== null ? ['--filter-xdp-expr'] : []), ...(cfg.output.xdpMetadata !== null ? ['--output-xdp-metadata'] : [])];
}

/**
 * Compiles what was given against the kernel's BTF (usage errors), then
 * refuses the run where the XDP programs' fentry is refused (an Error: exit 1).
 */
export function checkXdpExpressions(cfg: TraceConfig, fentry: BackendAvailability | undefined): void {
  const flags = given(cfg);
  if (flags.length === 0) return;
  if (!cfg.attach.tracePrograms.has('xdp')) {
    throw new UsageError(`${flags[0]}: reads the xdp_buff of the XDP programs --filter-trace-xdp traces: add --filter-trace-xdp`);
  }
  const btf = vmlinuxBtf();
  if (btf === null) throw new UsageError(`${flags[0]}: this kernel has no BTF (/sys/kernel/btf/vmlinux) to find the fields in`);
  const compile = (flag: string, fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (e instanceof SkbExprError) throw new UsageError(`${flag}: ${e.message}`);
      throw e;
    }
  };
  if (cfg.filter.xdpExpr !== null) compile('--filter-xdp-expr', () => compileSkbExpr(cfg.filter.xdpExpr!, btf, XDP_ROOT));
  if (cfg.output.xdpMetadata !== null) compile('--output-xdp-metadata', () => compileSkbFetch(cfg.output.xdpMetadata!, btf, XDP_ROOT));
  if (!fentry?.ok) {
    throw new Error(`${flags.join(', ')}: ${flags.length > 1 ? 'read' : 'reads'} the xdp_buff of traced XDP programs through fentry, ` +
      `which this kernel refuses (${fentry?.detail ?? 'not tried'}); \`pktpath doctor\` shows what works`);
  }
  throw new Error(`${flags.join(', ')}: pktpath's probe of XDP programs does not carry ${flags.length > 1 ? 'them' : 'it'} yet; ` +
    '--filter-trace-xdp traces the programs and their verdicts without');
}
