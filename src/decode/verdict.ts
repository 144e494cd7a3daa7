/**
 * The verdict section of a traced BPF program's exit (struct verdict_section):
 * what it returned and, for a redirect, the target the kernel holds for it.
 * Named for people by src/output/verdict.ts.
 */
import { EVENT_LAYOUT } from './layout.js';

export interface RawVerdict {
  /** TC_ACT_* (legacy tc) or TCX_* (tcx): the same numbers. */
  retval: number;
  /** TC_ACT_REDIRECT: the target device's ifindex, 0 when the kernel did not say. */
  redirectIfindex: number;
  /** BPF_F_INGRESS, BPF_F_NEIGH, BPF_F_PEER. */
  redirectFlags: number;
}

const VF = EVENT_LAYOUT.verdict_section.fields;

/** Decodes the verdict section at `at`. */
export function decodeVerdict(view: DataView, at: number): RawVerdict {
  return {
    retval: view.getInt32(at + VF.retval, true),
    redirectIfindex: view.getUint32(at + VF.redirect_ifindex, true),
    redirectFlags: view.getUint32(at + VF.redirect_flags, true),
  };
}
