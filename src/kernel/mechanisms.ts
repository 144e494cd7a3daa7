/**
 * Each attach mechanism tried for real (src/bpf/features), in words for
 * `pktpath doctor`: what works, and what the kernel said where it refused.
 */
import os from 'node:os';
import { BpfError, errnoName } from '../bpf/errors.js';
import { type Mechanism, probeFeature } from '../bpf/features.js';
import { refusalReason } from '../bpf/log.js';

export interface MechanismResult {
  mechanism: string;
  ok: boolean;
  /** "works", or what the kernel said (errno name) and where. */
  detail: string;
}

const LABELS: ReadonlyArray<[Mechanism, string]> = [
  ['tp_btf', 'tp_btf (BTF tracepoints)'],
  ['raw_tp', 'raw_tp (raw tracepoints)'],
  ['tcx', 'tcx (tc links)'],
  ['netfilter', 'netfilter links'],
  ['kprobe', 'kprobe'],
  ['kprobe-multi', 'kprobe-multi'],
  ['fentry', 'fentry'],
];

/** What the kernel refused, in one line: the step, the errno, the verifier's last word. */
export function describeRefusal(e: Error): string {
  if (e instanceof BpfError) {
    const log = refusalReason(e.logTail);
    return `${e.action.replace(/^(loading|attaching|finding) /, '$1: ')} → ${e.errno ? errnoName(e.errno) : 'failed'}` +
      (log ? ` (${log})` : '');
  }
  return e.message.split('\n')[0]!;
}

export function probeMechanisms(): MechanismResult[] {
  return LABELS.map(([m, mechanism]) => {
    const r = probeFeature(m);
    return r.ok ? { mechanism, ok: true, detail: 'works' } : { mechanism, ok: false, detail: describeRefusal(r.error) };
  });
}

export function kernelRelease(): string {
  return `${os.type()} ${os.release()} ${os.arch()}`;
}
