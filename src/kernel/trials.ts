/**
 * What the running kernel allows, learned by trying it: the smallest program
 * of each kind, built from two instructions, loaded and attached, then
 * released. Each answer is worked out once per process.
 */
import { AttachType, ProgType } from './abi.js';
import { type Btf } from './btf/btf.js';
import { vmlinuxBtf } from './btf/vmlinux.js';
import { BpfError } from './errors.js';
import { returnImm } from './insn.js';
import { type Link, attachKprobe, attachKprobeMulti, attachNetfilter, attachRawTracepoint, attachTcx } from './link.js';
import { interfaces } from './native/libc.js';
import { Program, type ProgramSpec } from './program.js';

export type Mechanism = 'tp_btf' | 'raw_tp' | 'tcx' | 'netfilter' | 'kprobe' | 'kprobe-multi' | 'fentry';

/** A function and a tracepoint every kernel with networking has. */
const PROBE_FUNCTION = 'ip_rcv';
const PROBE_TRACEPOINT = 'netif_receive_skb';
/** TCX_NEXT: pass the packet on. NF_ACCEPT. */
const TCX_NEXT = -1;
const NF_ACCEPT = 1;
/** An unusual netfilter priority, so a trace already attached at its own does not make the probe fail. */
const PROBE_NF_PRIORITY = 0x7ffffff0;

export type FeatureResult = { ok: true } | { ok: false; error: Error };

interface Trial {
  spec: (btf: Btf | null) => ProgramSpec;
  attach: (prog: Program) => Link;
}

function btfId(btf: Btf | null, name: string, kind: 'TYPEDEF' | 'FUNC'): number {
  const id = btf?.findOne(name, kind) ?? null;
  if (id === null) throw new BpfError(`finding ${name} in the kernel's BTF`, -2, [], btf ? '' : 'this kernel has no BTF');
  return id;
}

const TRIALS: Record<Mechanism, Trial> = {
  tp_btf: {
    spec: (btf) => ({
      type: ProgType.TRACING, name: 'feature_tp_btf', insns: returnImm(0),
      expectedAttachType: AttachType.TRACE_RAW_TP, attachBtfId: btfId(btf, `btf_trace_${PROBE_TRACEPOINT}`, 'TYPEDEF'),
    }),
    attach: (p) => attachRawTracepoint(p, null, `tp_btf/${PROBE_TRACEPOINT}`),
  },
  raw_tp: {
    spec: () => ({ type: ProgType.RAW_TRACEPOINT, name: 'feature_raw_tp', insns: returnImm(0) }),
    attach: (p) => attachRawTracepoint(p, PROBE_TRACEPOINT, `raw_tp/${PROBE_TRACEPOINT}`),
  },
  tcx: {
    spec: () => ({ type: ProgType.SCHED_CLS, name: 'feature_tcx', insns: returnImm(TCX_NEXT) }),
    attach: (p) => {
      const lo = interfaces().find((i) => i.name === 'lo');
      if (!lo) throw new Error('no loopback device to try tcx on');
      return attachTcx(p, lo.ifindex, 'ingress', 'tcx ingress on lo');
    },
  },
  netfilter: {
    spec: () => ({
      type: ProgType.NETFILTER, name: 'feature_nf', insns: returnImm(NF_ACCEPT), expectedAttachType: AttachType.NETFILTER,
    }),
    attach: (p) => attachNetfilter(p, 'ipv4', 'local_in', PROBE_NF_PRIORITY, 'netfilter ipv4 local_in'),
  },
  kprobe: {
    spec: () => ({ type: ProgType.KPROBE, name: 'feature_kprobe', insns: returnImm(0) }),
    attach: (p) => attachKprobe(p, PROBE_FUNCTION, `kprobe/${PROBE_FUNCTION}`),
  },
  'kprobe-multi': {
    spec: () => ({
      type: ProgType.KPROBE, name: 'feature_kmulti', insns: returnImm(0), expectedAttachType: AttachType.TRACE_KPROBE_MULTI,
    }),
    attach: (p) => attachKprobeMulti(p, [PROBE_FUNCTION], `kprobe.multi/${PROBE_FUNCTION}`),
  },
  fentry: {
    spec: (btf) => ({
      type: ProgType.TRACING, name: 'feature_fentry', insns: returnImm(0),
      expectedAttachType: AttachType.TRACE_FENTRY, attachBtfId: btfId(btf, PROBE_FUNCTION, 'FUNC'),
    }),
    attach: (p) => attachRawTracepoint(p, null, `fentry/${PROBE_FUNCTION}`),
  },
};

const answers = new Map<Mechanism, FeatureResult>();

/** Whether `m` loads and attaches here; the error says which step the kernel refused, and why. */
export function probeFeature(m: Mechanism): FeatureResult {
  let answer = answers.get(m);
  if (answer === undefined) {
    answer = tryOnce(TRIALS[m]);
    answers.set(m, answer);
  }
  return answer;
}

function tryOnce(trial: Trial): FeatureResult {
  let prog: Program | null = null;
  let link: Link | null = null;
  try {
    prog = Program.load(trial.spec(vmlinuxBtf()));
    link = trial.attach(prog);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: e as Error };
  } finally {
    link?.close();
    prog?.close();
  }
}
