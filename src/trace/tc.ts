/**
 * pktpath's tc observers on the devices of a session: the last program of
 * each traced tcx chain, and the first too where other programs run there,
 * so their verdicts show (./verdicts.ts). Devices come and go while a trace
 * runs; chains change when a CNI attaches or detaches programs. Both are
 * followed: `add`, `remove`, and `refresh` for chains that changed.
 */
import { type Link, type LoadedProgram, attachTcx, closeAllParallel } from '../bpf/link.js';
import { tcxChain } from '../bpf/loaded.js';
import { type ProgRef, ProgramBook, devicesWithTcPrograms, tcHooks } from '../kernel/datapath.js';
import { type NetlinkSocket } from '../kernel/netlink.js';
import type { Iface, Netns } from '../kernel/netns.js';
import type { Direction, HookLookup, HookPrograms } from './verdicts.js';

interface Hook {
  netns: Netns;
  iface: Iface;
  direction: Direction;
  last: Link;
  first: Link | null;
  programs: HookPrograms;
  revision: bigint;
}

/** The observer programs: `first` is loaded when a hook first needs it. */
export interface TcPrograms {
  last: LoadedProgram & { id: number };
  first(): LoadedProgram & { id: number };
}

/** How the last observer goes on a device: a tcx link, or a cls_bpf filter where the kernel has no tcx (./clsact.ts). */
export type TcAttacher = (prog: LoadedProgram, netns: Netns, ifindex: number, direction: Direction, description: string,
  rtnl: NetlinkSocket | null) => Link;
export const attachLastTcx: TcAttacher = (prog, _netns, ifindex, direction, description) =>
  attachTcx(prog, ifindex, direction, description, 'last');

const key = (inode: number, ifindex: number, direction: Direction) => `${inode}:${ifindex}:${direction}`;

export class TcObservers {
  private readonly hooks = new Map<string, Hook>();
  private readonly own = new Set<number>();
  private firstProgram: (LoadedProgram & { id: number }) | null = null;
  /** Program ids are never reused: one book serves the whole session. */
  private readonly book = new ProgramBook(this.own);

  constructor(
    private readonly programs: TcPrograms,
    private readonly directions: readonly Direction[],
    private readonly status: (line: string) => void,
    /** tcx: the first observer too, where other programs run; clsact filters: only the last (verdicts are inferred). */
    private readonly attachLast: TcAttacher = attachLastTcx,
    /** Told the other programs of each hook whenever they are read (--filter-trace-tc traces them). */
    private readonly foundPrograms?: (programs: ProgRef[]) => void,
  ) {
    this.own.add(programs.last.id);
  }

  /** Other programs at a hook, for the verdict stage. */
  readonly lookup: HookLookup = (netns, ifindex, direction) => this.hooks.get(key(netns, ifindex, direction))?.programs;

  get deviceCount(): number {
    return new Set([...this.hooks.values()].map((h) => `${h.netns.inode}:${h.iface.ifindex}`)).size;
  }

  get hookCount(): number {
    return this.hooks.size;
  }

  /** Hooks where pktpath also observes first, before other programs. */
  get firstCount(): number {
    return [...this.hooks.values()].filter((h) => h.first !== null).length;
  }

  /**
   * Attaches at each direction of a device of `netns` (the calling thread must
   * be in it: withNetns). `rtnl`: a route socket of that namespace, for legacy
   * tc. Throws when the device cannot be observed.
   */
  add(netns: Netns, iface: Iface, rtnl: NetlinkSocket | null, describe: (d: Direction) => string): void {
    for (const direction of this.directions) {
      const k = key(netns.inode, iface.ifindex, direction);
      if (this.hooks.has(k)) continue;
      const last = this.attachLast(this.programs.last, netns, iface.ifindex, direction, describe(direction), rtnl);
      const hook: Hook = { netns, iface, direction, last, first: null, programs: { between: [], after: [] }, revision: -1n };
      this.hooks.set(k, hook);
      this.place(hook, rtnl, describe(direction));
    }
  }

  /** Re-reads the chains of a namespace's hooks (calling thread in it) and places first observers where needed. */
  refresh(netns: Netns, rtnl: NetlinkSocket | null, legacyChanged: ReadonlySet<number>): void {
    for (const hook of this.hooks.values()) {
      if (hook.netns.inode !== netns.inode) continue;
      const chain = tcxChain(hook.iface.ifindex, hook.direction);
      if (chain && chain.revision === hook.revision && !legacyChanged.has(hook.iface.ifindex)) continue;
      this.place(hook, rtnl, hook.last.description);
    }
  }

  /** Releases the observers of a device, or of a whole namespace (ifindex undefined). */
  remove(inode: number, ifindex?: number): number {
    let n = 0;
    for (const [k, h] of this.hooks) {
      if (h.netns.inode !== inode || (ifindex !== undefined && h.iface.ifindex !== ifindex)) continue;
      h.first?.close();
      h.last.close();
      this.hooks.delete(k);
      n++;
    }
    return n;
  }

  /** Whether programs other than pktpath's run at a device's tc hooks (calling thread in its namespace; `rtnl` for legacy tc). */
  othersRunAt(rtnl: NetlinkSocket | null, ifindex: number): boolean {
    return devicesWithTcPrograms(this.book, rtnl, [ifindex]).size > 0;
  }

  rename(inode: number, ifindex: number, name: string): void {
    for (const h of this.hooks.values()) if (h.netns.inode === inode && h.iface.ifindex === ifindex) h.iface = { ifindex, name };
  }

  /**
   * Closes every observer, one at a time off the main thread: the kernel holds
   * rtnl across each tcx detach and its RCU grace period, so closes made at
   * once only contend (measured: 50 namespaces, 2.9 s one by one, 4.2 s four at a time).
   */
  async closeAll(): Promise<void> {
    const links = [...this.hooks.values()].flatMap((h) => (h.first ? [h.last, h.first] : [h.last]));
    this.hooks.clear();
    await closeAllParallel(links, 1);
  }

  /** Which other programs run at a hook, relative to pktpath's observers; adds or drops the first observer. */
  private place(hook: Hook, rtnl: NetlinkSocket | null, description: string): void {
    const book = this.book;
    const read = () => {
      const chain = tcxChain(hook.iface.ifindex, hook.direction);
      const programs = tcHooks(book, rtnl, hook.iface.ifindex)[hook.direction];
      const ids = chain?.progIds ?? [];
      const lastAt = ids.indexOf(this.programs.last.id);
      const firstAt = this.firstProgram ? ids.indexOf(this.firstProgram.id) : -1;
      const foreign = (p: ProgRef) => !p.own && !this.own.has(p.id);
      const tcx = programs.tcx.map((p, i) => ({ p, i })).filter(({ p }) => foreign(p));
      return {
        revision: chain?.revision ?? 0n,
        between: tcx.filter(({ i }) => lastAt < 0 || i < lastAt).map(({ p }) => p),
        after: [...tcx.filter(({ i }) => lastAt >= 0 && i > lastAt).map(({ p }) => p), ...programs.legacy.filter(foreign)],
        /** A program attached in front of pktpath's first observer (BPF_F_BEFORE, later): it must go first again. */
        overtaken: firstAt > 0 && tcx.some(({ i }) => i < firstAt),
      };
    };
    let r = read();
    if (r.overtaken && hook.first !== null) {
      hook.first.close();
      hook.first = null;
    }
    if (r.between.length > 0 && hook.first === null && this.attachLast === attachLastTcx) {
      try {
        const first = (this.firstProgram ??= this.programs.first());
        this.own.add(first.id);
        hook.first = attachTcx(first, hook.iface.ifindex, hook.direction, `${description} (first in the chain)`, 'first');
        r = read();
      } catch (e) {
        this.status(`pktpath: ${description}: other programs run there, but pktpath cannot observe before them ` +
          `(${(e as Error).message.split('\n')[0]}); their verdicts are inferred from the next observation`);
        r = { ...r, after: [...r.between, ...r.after], between: [], overtaken: false };
      }
    } else if (r.between.length === 0 && hook.first !== null) {
      hook.first.close();
      hook.first = null;
    }
    hook.programs = { between: r.between, after: r.after };
    hook.revision = r.revision;
    this.foundPrograms?.([...r.between, ...r.after]);
  }
}
