/**
 * What the running kernel allows, in one model: the planner, the probe
 * loader, `pktpath list` and `pktpath doctor` all ask it, and nothing else in
 * pktpath probes the kernel. Each answer is worked out the first time it is
 * asked and kept for the process: a trial (./trials.ts: a program loaded and
 * attached, a map made), or a read of the kernel's BTF or sysfs.
 */
import fs from 'node:fs';
import { Btf } from '../bpf/btf/btf.js';
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { tracepointProto } from './btf.js';
import { describeRefusal } from './mechanisms.js';
import { LOAD_TRIALS, MECHANISM_TRIALS, type Mechanism, ringbufTrial, runTrial } from './trials.js';

export type { Mechanism } from './trials.js';

const BTF_DIR = '/sys/kernel/btf';

export type Capability = Mechanism | keyof typeof LOAD_TRIALS | 'btf' | 'module-btf' | 'ringbuf'
  | 'tcx-attach-type' | 'netfilter-attach-type' | 'helper-get-func-ip' | 'kfunc-rdonly-cast' | 'kfunc-cast-to-kern-ctx' | 'kfunc-ct-lookup' | 'drop-reasons';

export interface CapAnswer {
  ok: boolean;
  /** "works" (or what was found), or what the kernel said (errno name) and where. */
  detail: string;
  /** The kernel's refusal, where a trial was refused. */
  error: Error | null;
}

interface Question {
  /** For `pktpath doctor`. */
  label: string;
  /** true, a string saying what is missing, or the refusal. */
  ask: () => true | string | Error | null;
}

const attachTypes = () => new Set(vmlinuxBtf()?.enumValues('bpf_attach_type')?.values() ?? []);

/** A kfunc the kernel's BTF declares (vmlinux or a module's). */
function declaresKfunc(name: string, module?: string): true | string {
  const btf = vmlinuxBtf();
  if (!btf) return 'no kernel BTF';
  if (btf.findOne(name, 'FUNC') !== null) return true;
  try {
    if (module && Btf.loadSplit(`${BTF_DIR}/${module}`, btf).findOne(name, 'FUNC') !== null) return true;
  } catch {
    // The module is not loaded, or has no BTF.
  }
  return `${name} is not in the kernel's BTF`;
}

const QUESTIONS: Record<Capability, Question> = {
  btf: { label: 'kernel BTF', ask: () => vmlinuxBtf() !== null || 'missing (CONFIG_DEBUG_INFO_BTF)' },
  'module-btf': {
    label: 'module BTF (skb functions of modules)',
    ask: () => {
      try {
        return fs.readdirSync(BTF_DIR).some((m) => m !== 'vmlinux') || 'no module has BTF';
      } catch {
        return `${BTF_DIR} is not there`;
      }
    },
  },
  ringbuf: { label: 'ring buffer maps', ask: ringbufTrial },
  tp_btf: { label: 'tp_btf (BTF tracepoints)', ask: () => runTrial(MECHANISM_TRIALS.tp_btf, vmlinuxBtf()) },
  raw_tp: { label: 'raw_tp (raw tracepoints)', ask: () => runTrial(MECHANISM_TRIALS.raw_tp, vmlinuxBtf()) },
  tcx: { label: 'tcx (tc links)', ask: () => runTrial(MECHANISM_TRIALS.tcx, vmlinuxBtf()) },
  netfilter: { label: 'netfilter links', ask: () => runTrial(MECHANISM_TRIALS.netfilter, vmlinuxBtf()) },
  kprobe: { label: 'kprobe', ask: () => runTrial(MECHANISM_TRIALS.kprobe, vmlinuxBtf()) },
  'kprobe-multi': { label: 'kprobe-multi', ask: () => runTrial(MECHANISM_TRIALS['kprobe-multi'], vmlinuxBtf()) },
  fentry: { label: 'fentry', ask: () => runTrial(MECHANISM_TRIALS.fentry, vmlinuxBtf()) },
  'tcx-attach-type': { label: 'tcx attach types (BTF)', ask: () => attachTypes().has('BPF_TCX_INGRESS') || 'not in bpf_attach_type' },
  'netfilter-attach-type': { label: 'netfilter attach type (BTF)', ask: () => attachTypes().has('BPF_NETFILTER') || 'not in bpf_attach_type' },
  'helper-get-func-ip': {
    label: 'helper bpf_get_func_ip (return values)',
    ask: () => new Set(vmlinuxBtf()?.enumValues('bpf_func_id')?.values() ?? []).has('BPF_FUNC_get_func_ip') || 'not in bpf_func_id (5.15+)',
  },
  'task-helpers-tc': { label: 'pid and comm in tc programs', ask: () => runTrial(LOAD_TRIALS['task-helpers-tc'], vmlinuxBtf()) },
  'task-helpers-netfilter': {
    label: 'pid and comm in netfilter programs', ask: () => runTrial(LOAD_TRIALS['task-helpers-netfilter'], vmlinuxBtf()),
  },
  'direct-packet-loads': { label: 'packet bytes read in place', ask: () => runTrial(LOAD_TRIALS['direct-packet-loads'], vmlinuxBtf()) },
  'kfunc-rdonly-cast': { label: 'kfunc bpf_rdonly_cast (typed reads)', ask: () => declaresKfunc('bpf_rdonly_cast') },
  'kfunc-cast-to-kern-ctx': { label: 'kfunc bpf_cast_to_kern_ctx (tc)', ask: () => declaresKfunc('bpf_cast_to_kern_ctx') },
  'kfunc-ct-lookup': { label: 'kfunc bpf_skb_ct_lookup (conntrack)', ask: () => declaresKfunc('bpf_skb_ct_lookup', 'nf_conntrack') },
  'drop-reasons': {
    label: 'drop reasons (kfree_skb\'s reason)',
    ask: () => {
      const btf = vmlinuxBtf();
      if (!btf) return 'no kernel BTF';
      const proto = tracepointProto(btf, 'kfree_skb');
      return proto?.some((p) => /enum skb_drop_reason$/.test(p.typeName)) || 'kfree_skb has no reason argument';
    },
  },
};

/** Every capability, in the order `pktpath doctor` lists them. */
export const CAPABILITIES = Object.keys(QUESTIONS) as Capability[];

const answers = new Map<Capability, CapAnswer>();

/** Whether the kernel allows `cap`, and what it said; asked of the kernel once per process. */
export function capability(cap: Capability): CapAnswer {
  let answer = answers.get(cap);
  if (answer === undefined) {
    const r = QUESTIONS[cap].ask();
    answer = r === true || r === null ? { ok: true, detail: 'works', error: null }
      : r instanceof Error ? { ok: false, detail: describeRefusal(r), error: r }
        : { ok: false, detail: r, error: null };
    answers.set(cap, answer);
  }
  return answer;
}

export const has = (cap: Capability): boolean => capability(cap).ok;

export const capabilityLabel = (cap: Capability): string => QUESTIONS[cap].label;

/** What the planner needs, without loading anything: read from the kernel's BTF. */
export interface KernelFeatures {
  /** BTF-typed tracepoints (tp_btf) need kernel BTF. */
  tracing: boolean;
  /** tcx links (Linux 6.6+). */
  tcx: boolean;
  /** BPF netfilter links (Linux 6.4+). */
  netfilter: boolean;
}

export function kernelFeatures(): KernelFeatures {
  return { tracing: has('btf'), tcx: has('tcx-attach-type'), netfilter: has('netfilter-attach-type') };
}
