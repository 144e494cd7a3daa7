/**
 * The stack section's user half: a stack id from a record becomes the
 * symbolized frames of the kernel stack it names (probes/include/sections/stack.h).
 */
import type { StackTraceMap } from '../bpf/maps.js';
import type { Symbols } from '../kernel/kallsyms.js';

export class StackSymbols {
  /** Stack ids are stable (no BPF_F_REUSE_STACKID), so a symbolized stack is kept. */
  private readonly cache = new Map<number, string[]>();

  constructor(private readonly map: Pick<StackTraceMap, 'read'>, private readonly symbols: Symbols | null) {}

  /** The frames of stack `id`, innermost first, without pktpath's own. */
  frames(id: number): string[] {
    let s = this.cache.get(id);
    if (!s) {
      const ips = this.map.read(id);
      s = dropProbeFrames(ips.map((ip) => (this.symbols ? this.symbols.format(ip) : `0x${ip.toString(16)}`)));
      this.cache.set(id, s);
    }
    return s;
  }
}

/**
 * The innermost frames are pktpath's own program and the tracepoint glue that
 * called it: not the packet's story. The program is `… [bpf]`, or a bare
 * address when the symbols were read before it was loaded.
 */
export function dropProbeFrames(frames: string[]): string[] {
  let i = 0;
  while (i < frames.length && /( \[bpf\]$|^0x[0-9a-f]+$|^bpf_trace_run\d|^__bpf_trace_|^__traceiter_)/.test(frames[i]!)) i++;
  return i < frames.length ? frames.slice(i) : frames;
}
