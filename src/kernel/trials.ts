/**
 * The trials behind the capability model (./caps.ts): the smallest program
 * of each kind, built from a few instructions, loaded and (for an attach
 * mechanism) attached, then released; a map made and closed. Only caps.ts
 * runs them, once each per process.
 */
import { AttachType, ProgType } from '../bpf/abi.js';
import { type Btf } from '../bpf/btf/btf.js';
import { BpfError } from '../bpf/errors.js';
import { Alu, Class, Jmp, Size, Mode, Src, insn, returnImm, type EbpfInsn } from '../bpf/insn.js';
import { type Link, attachKprobe, attachKprobeMulti, attachNetfilter, attachRawTracepoint, attachTcx } from '../bpf/link.js';
import { LoadedMap, MapType } from '../bpf/maps.js';
import { interfaces } from '../bpf/native/libc.js';
import { Program, type ProgramSpec } from '../bpf/program.js';

export type Mechanism = 'tp_btf' | 'raw_tp' | 'tcx' | 'netfilter' | 'kprobe' | 'kprobe-multi' | 'fentry';

/** A function and a tracepoint every kernel with networking has. */
const PROBE_FUNCTION = 'ip_rcv';
const PROBE_TRACEPOINT = 'netif_receive_skb';
/** TCX_NEXT: pass the packet on. NF_ACCEPT. */
const TCX_NEXT = -1;
const NF_ACCEPT = 1;
/** An unusual netfilter priority, so a trace already attached at its own does not make the probe fail. */
const PROBE_NF_PRIORITY = 0x7ffffff0;
const HELPER_GET_CURRENT_PID_TGID = 14;
const HELPER_GET_CURRENT_COMM = 16;
const TASK_COMM_LEN = 16;

/** A program to load, and where it attaches (nothing: loading is the trial). */
export interface Trial {
  spec: (btf: Btf | null) => ProgramSpec;
  attach?: (prog: Program) => Link;
}

function btfId(btf: Btf | null, name: string, kind: 'TYPEDEF' | 'FUNC'): number {
  const id = btf?.findOne(name, kind) ?? null;
  if (id === null) throw new BpfError(`finding ${name} in the kernel's BTF`, -2, [], btf ? '' : 'this kernel has no BTF');
  return id;
}

const tpBtf = (btf: Btf | null, name: string, insns: EbpfInsn[]): ProgramSpec => ({
  type: ProgType.TRACING, name, insns, expectedAttachType: AttachType.TRACE_RAW_TP,
  attachBtfId: btfId(btf, `btf_trace_${PROBE_TRACEPOINT}`, 'TYPEDEF'),
});

/**
 * The current task's helpers as the probes call them (pid, then comm into 16
 * bytes of stack), then `return k`: some kernels refuse one of them to the
 * program type (6.12: comm to tc and netfilter), others both.
 */
const callingTaskHelpers = (k: number): EbpfInsn[] => [
  insn(Class.JMP | Jmp.CALL, 0, 0, 0, HELPER_GET_CURRENT_PID_TGID),
  insn(Class.ALU64 | Alu.MOV | Src.X, 1, 10),
  insn(Class.ALU64 | Alu.ADD | Src.K, 1, 0, 0, -TASK_COMM_LEN),
  insn(Class.ALU64 | Alu.MOV | Src.K, 2, 0, 0, TASK_COMM_LEN),
  insn(Class.JMP | Jmp.CALL, 0, 0, 0, HELPER_GET_CURRENT_COMM),
  ...returnImm(k),
];

/**
 * `skb = ctx[0]; r2 = skb->data; r0 = *(u8 *)r2; return 0`: a char pointer
 * read from a typed struct, read through (6.17+: read-only untrusted memory;
 * before, a scalar the verifier refuses to dereference).
 */
function readingSkbData(btf: Btf | null): EbpfInsn[] {
  const data = btf?.structLayout('sk_buff')?.members.get('data');
  if (!data) throw new BpfError('finding sk_buff.data in the kernel\'s BTF', -2, [], btf ? '' : 'this kernel has no BTF');
  const ldx = (size: number, dst: number, src: number, off: number) => insn(Class.LDX | size | Mode.MEM, dst, src, off);
  return [ldx(Size.DW, 1, 1, 0), ldx(Size.DW, 2, 1, data.offset), ldx(Size.B, 0, 2, 0), insn(Class.ALU64 | Alu.MOV | Src.K, 0, 0, 0, 0),
    insn(Class.JMP | Jmp.EXIT)];
}

export const MECHANISM_TRIALS: Record<Mechanism, Trial> = {
  tp_btf: {
    spec: (btf) => tpBtf(btf, 'feature_tp_btf', returnImm(0)),
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

/** Programs that only load: what the probes' builds need of the verifier. */
export const LOAD_TRIALS = {
  /** The current task's helpers (pid, comm) in a tc program. */
  'task-helpers-tc': { spec: () => ({ type: ProgType.SCHED_CLS, name: 'feature_tc_task', insns: callingTaskHelpers(TCX_NEXT) }) },
  /** The same in a netfilter program (6.12 refuses them there). */
  'task-helpers-netfilter': {
    spec: () => ({
      type: ProgType.NETFILTER, name: 'feature_nf_task', insns: callingTaskHelpers(NF_ACCEPT),
      expectedAttachType: AttachType.NETFILTER,
    }),
  },
  /** Packet bytes read in place through skb->data (PacketLoads 'direct' in src/filter/cbpf-to-ebpf.ts). */
  'direct-packet-loads': { spec: (btf) => tpBtf(btf, 'feature_direct', readingSkbData(btf)) },
} as const satisfies Record<string, Trial>;

/** Loads (and attaches) a trial's program and releases it: null where the kernel allows it, else what it said. */
export function runTrial(trial: Trial, btf: Btf | null): Error | null {
  let prog: Program | null = null;
  let link: Link | null = null;
  try {
    prog = Program.load(trial.spec(btf));
    if (trial.attach) link = trial.attach(prog);
    return null;
  } catch (e) {
    return e as Error;
  } finally {
    link?.close();
    prog?.close();
  }
}

/** A ring buffer map made and closed (Linux 5.8+): what every probe writes its records into. */
export function ringbufTrial(): Error | null {
  try {
    LoadedMap.create({ type: MapType.RINGBUF, name: 'feature_ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 }).close();
    return null;
  } catch (e) {
    return e as Error;
  }
}
