/** The status lines a session writes for a person (stderr): what got attached, what came and went, what was followed. */
import type { TopologyCounts } from '../output/summary.js';

export const plural = (n: number, word: string) => (n === 1 ? word : `${word}s`);

export interface AttachedState {
  links: number;
  tracepoints: number;
  /** Frees watched for --filter-track-skb only (internal tracepoints, never reported). */
  forgets: number;
  /** Kernel functions probed (kprobe, kprobe-multi, fentry). */
  functions: number;
  tcDevices: number;
  /** Devices without tc observers (--tc-devices programs): no other tc program there. */
  tcAside: number;
  /** tc hooks where pktpath also observes first, before other programs. */
  tcFirst: number;
  nfNamespaces: number;
  /** Netfilter observed at nf_hook_slow (kernels without netfilter links): every namespace at once. */
  nfHookFunction: boolean;
  /** Other tc programs traced (--filter-trace-tc). */
  programs: number;
  /** Netfilter priorities moved because another session held them (`planned→used`). */
  nfMoved: ReadonlySet<string>;
  /** Namespaces with nft tracing; null without --output-nft. */
  nftNamespaces: number | null;
}

export function attachedLine(a: AttachedState, ms: number): string {
  return `pktpath: attached ${a.links} links: ${a.tracepoints} tracepoints, ` +
    (a.forgets > 0 ? `${a.forgets} ${plural(a.forgets, 'free')} watched for --filter-track-skb, ` : '') +
    (a.functions > 0 ? `${a.functions} ${plural(a.functions, 'function')}, ` : '') + `tc on ${a.tcDevices} ${plural(a.tcDevices, 'device')}` +
    (a.tcAside > 0 ? ` (not on ${a.tcAside} without tc programs)` : '') +
    (a.tcFirst > 0 ? ` (first in the chain too at ${a.tcFirst} ${plural(a.tcFirst, 'hook')} with other programs)` : '') +
    (a.nfHookFunction ? ', netfilter at nf_hook_slow' : `, netfilter in ${a.nfNamespaces} ${plural(a.nfNamespaces, 'namespace')}`) +
    (a.programs > 0 ? `, ${a.programs} tc ${plural(a.programs, 'program')} traced` : '') +
    (a.nfMoved.size > 0 ? ` (priorities ${[...a.nfMoved].join(', ')}: others held them)` : '') +
    (a.nftNamespaces !== null ? `, nft tracing in ${a.nftNamespaces} ${plural(a.nftNamespaces, 'namespace')}` : '') +
    ` (${ms.toFixed(0)} ms); Ctrl-C to stop`;
}

export function topologyLine(t: TopologyCounts, tcDevices: number, nfNamespaces: number): string {
  return `pktpath: while tracing: namespaces +${t.namespacesAdded} -${t.namespacesRemoved}, devices +${t.devicesAdded} -${t.devicesRemoved}; ` +
    `at the end tc on ${tcDevices} devices, netfilter in ${nfNamespaces} namespaces`;
}

/** What --filter-track-skb did with the skbs it followed (TrackStat), and how many its map still holds. */
export interface TrackingCounts {
  added: number;
  /** Forgotten at a point that frees them. */
  freed: number;
  /** Dropped when their address was seen holding another skb: freed where no probe saw it. */
  stale: number;
  /** Followed on when their data moved to another buffer. */
  moved: number;
  live: number;
  /** Taken up as seen on a followed skb's kernel stack (--filter-track-skb-by-stackid). */
  byStack?: number;
  /** Clones and copies seen made from followed skbs (fexit). */
  copied?: number;
}

/** What --filter-track-skb did: followed, forgotten when freed, dropped as stale, still followed, evicted for room. */
export function trackingLine(t: TrackingCounts): string {
  const evicted = Math.max(0, t.added - t.freed - t.stale - t.live);
  const how = [
    t.moved > 0 ? `${t.moved} on past a move of their data` : '',
    t.byStack ? `${t.byStack} taken up on a followed skb's kernel stack` : '',
    t.copied ? `${t.copied} clones and copies seen made` : '',
  ].filter(Boolean);
  return `pktpath: --filter-track-skb followed ${t.added} skbs${how.length > 0 ? ` (${how.join(', ')})` : ''}: ` +
    `${t.freed} forgotten when freed, ${t.stale} dropped when their address held another skb (freed where no probe saw it), ` +
    `${t.live} still followed, ${evicted} evicted for room`;
}
