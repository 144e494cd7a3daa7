/**
 * The nft tracing family (--output-nft): nftables' tracing in every traced
 * namespace, and in those that appear, for the packets pktpath's filter
 * selects (../nft.ts reads the traces). It follows what the observers see:
 * it starts once they are attached.
 */
import { expressionToNft } from '../../filter/nft-rules.js';
import { NftTracer } from '../nft.js';
import type { LoadRequest } from '../probes.js';
import type { TopologyListener } from '../topology.js';
import { type AttachFamily, type FamilyContext, type FamilyReport, netnsName } from './family.js';

export class NftFamily implements AttachFamily {
  private nft: NftTracer | null = null;

  constructor(private readonly ctx: FamilyContext) {
  }

  /** The tracer, with --output-nft once attached: what the session reads. */
  get tracer(): NftTracer | null {
    return this.nft;
  }

  /** Loads nothing: its tables are nftables', made as it attaches. */
  plan(): LoadRequest[] {
    return [];
  }

  /** Throws when no namespace could be traced. */
  async attach(): Promise<boolean> {
    const { opts, filter, kernel } = this.ctx;
    if (!opts.nft) return true;
    // A tcpdump expression (no flag rules) goes into the table as it is, where nftables takes it.
    const matches = opts.nft.matches ?? (filter.compiled ? expressionToNft(filter.compiled, filter.mark) : null);
    const nft = (this.nft = new NftTracer(matches, this.ctx.names, this.ctx.status));
    let last: Error | null = null;
    for (const { netns } of kernel.namespaces) {
      if (!(await this.ctx.goOn())) return false;
      last = this.ctx.attempt(`nft tracing (netns ${netnsName(netns)})`, () => nft.add(netns)) ?? last;
    }
    if (nft.namespaceCount === 0) throw last ?? new Error('--output-nft: no namespace to trace');
    return true;
  }

  readonly follow: Partial<TopologyListener> = {
    namespaceAdded: (netns) => {
      if (this.nft) this.ctx.attempt(`nft tracing (netns ${netnsName(netns)})`, () => this.nft!.add(netns));
    },
    namespaceRemoved: (netns) => this.nft?.remove(netns.inode),
  };

  detach(): void {
    this.nft?.close();
  }

  report(): FamilyReport {
    return { links: 0, line: { nftNamespaces: this.nft?.namespaceCount ?? null } };
  }
}
