/**
 * Tries each attach mechanism for real: loads the smallest program of its kind
 * and attaches it, then releases everything. What `pktpath doctor` reports.
 */
import os from 'node:os';
import path from 'node:path';
import { BpfError, errnoName } from '../bpf/errors.js';
import { type Link, attachNetfilter, attachTcx, attachTracing } from '../bpf/link.js';
import { BpfObject } from '../bpf/object.js';
import { ProbeSet, probesDir } from '../trace/probes.js';
import { currentNetns, listIfaces } from './netns.js';

export interface MechanismResult {
  mechanism: string;
  ok: boolean;
  /** "works", or what the kernel said (errno name) and where. */
  detail: string;
}

function describe(e: unknown): string {
  if (e instanceof BpfError) {
    const log = e.logTail.filter((l) => !/^-- (BEGIN|END)|processed \d+ insns/.test(l)).slice(-1)[0];
    return `${e.action.replace(/^(loading|attaching) /, '$1: ')} → ${e.errno ? errnoName(e.errno) : 'failed'}` +
      (log ? ` (${log.trim()})` : '');
  }
  return (e as Error).message.split('\n')[0]!;
}

function tryMechanism(mechanism: string, fn: (links: Link[]) => void): MechanismResult {
  const links: Link[] = [];
  try {
    fn(links);
    return { mechanism, ok: true, detail: 'works' };
  } catch (e) {
    return { mechanism, ok: false, detail: describe(e) };
  } finally {
    for (const l of links) l.close();
  }
}

/** Loads one program of features.bpf.o and attaches it by its section name. */
function tryFeatureProgram(mechanism: string, program: string): MechanismResult {
  let obj: BpfObject | null = null;
  try {
    return tryMechanism(mechanism, (links) => {
      obj = BpfObject.open(path.join(probesDir(), 'features.bpf.o'), `${mechanism} test program`);
      for (const p of ['feature_kprobe', 'feature_kprobe_multi', 'feature_fentry', 'feature_raw_tp']) {
        obj.program(p).setAutoload(p === program);
      }
      obj.load();
      links.push(attachTracing(obj.program(program), `${mechanism} test program`));
    });
  } finally {
    (obj as BpfObject | null)?.close();
  }
}

const noFilter = {
  pointId: 0, stack: false, filter: false, skbArg: 0, reasonArg: -1, locationArg: -1, devArg: -1,
  netns: 0, ifindex: 0, mark: null, track: false, frees: false, snaplen: 0,
};

export function probeMechanisms(): MechanismResult[] {
  const results: MechanismResult[] = [];
  const probes = new ProbeSet(1 << 16);
  try {
    results.push(tryMechanism('tp_btf (BTF tracepoints)', (links) => {
      const inst = probes.load('tracepoint', noFilter, 'tracepoint netif_receive_skb', 'netif_receive_skb');
      links.push(attachTracing(inst.program, 'tracepoint netif_receive_skb'));
    }));
    results.push(tryFeatureProgram('raw_tp (raw tracepoints)', 'feature_raw_tp'));
    results.push(tryMechanism('tcx (tc links)', (links) => {
      const inst = probes.load('tc', noFilter, 'tc observer');
      const lo = listIfaces().find((i) => i.name === 'lo');
      if (!lo) throw new Error('no loopback device to try on');
      links.push(attachTcx(inst.program, lo.ifindex, 'ingress', 'tcx ingress on lo'));
    }));
    results.push(tryMechanism('netfilter links', (links) => {
      const inst = probes.load('netfilter', noFilter, 'netfilter observer');
      links.push(attachNetfilter(inst.program, 'ipv4', 'local_in', -199, `nf:ipv4:local_in (netns ${currentNetns().inode})`));
    }));
    results.push(tryFeatureProgram('kprobe', 'feature_kprobe'));
    results.push(tryFeatureProgram('kprobe-multi', 'feature_kprobe_multi'));
    results.push(tryFeatureProgram('fentry', 'feature_fentry'));
  } finally {
    probes.close();
  }
  return results;
}

export function kernelRelease(): string {
  return `${os.type()} ${os.release()} ${os.arch()}`;
}
