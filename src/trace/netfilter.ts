/**
 * pktpath's netfilter observers of a session: BPF netfilter links per
 * namespace, from one observer program before NAT and, with --output-ct, one
 * after it. The kernel takes one link per hook and priority: where another
 * session holds the planned priority, the next free one in the plan's range
 * keeps the same place among the kernel's hooks.
 */
import { BpfError } from '../bpf/errors.js';
import { type Link, type LoadedProgram, attachNetfilter, closeAll, closeAllParallel } from '../bpf/link.js';
import { nfPointName } from '../decode/points.js';
import type { NfAttachment } from './attachments.js';

const EBUSY = -16;

export const nfWhere = (n: Pick<NfAttachment, 'family' | 'hook' | 'priority' | 'netns'>) =>
  `${nfPointName(n.family, n.hook)} at priority ${n.priority} (netns ${n.netns.name || n.netns.inode})`;

export class NfObservers {
  private readonly links = new Map<number, Link[]>();
  /** Priorities moved because another session held them (`planned→used`). */
  readonly moved = new Set<string>();

  constructor(private readonly programs: { beforeNat: LoadedProgram | null; afterNat: LoadedProgram | null }) {}

  get namespaceCount(): number {
    return this.links.size;
  }

  get linkCount(): number {
    let n = 0;
    for (const l of this.links.values()) n += l.length;
    return n;
  }

  hooksIn(inode: number): number {
    return this.links.get(inode)?.length ?? 0;
  }

  /** The observer at one hook of one namespace (the calling thread in it: withNetns); throws when it cannot be attached. */
  add(n: NfAttachment): void {
    const prog = n.afterNat ? this.programs.afterNat : this.programs.beforeNat;
    if (!prog) return;
    const step = n.priorityLast >= n.priority ? 1 : -1;
    for (let priority = n.priority; ; priority += step) {
      try {
        const link = attachNetfilter(prog, n.family, n.hook, priority, nfWhere({ ...n, priority }));
        let list = this.links.get(n.netns.inode);
        if (!list) this.links.set(n.netns.inode, (list = []));
        list.push(link);
        if (priority !== n.priority) this.moved.add(`${n.priority}→${priority}`);
        return;
      } catch (e) {
        if (!(e instanceof BpfError) || e.errno !== EBUSY) throw e;
        if (priority === n.priorityLast) {
          throw new BpfError(`attaching ${nfWhere(n)}`, EBUSY, [],
            `priorities ${n.priority} to ${n.priorityLast} are all taken (by other pktpath sessions?)`);
        }
      }
    }
  }

  /** Releases the observers of a namespace that went away. */
  remove(inode: number): void {
    closeAll(this.links.get(inode) ?? []);
    this.links.delete(inode);
  }

  /** Closes every hook's link, several at a time: each unregistration waits for an RCU grace period. */
  async closeAll(): Promise<void> {
    const links = [...this.links.values()].flat();
    this.links.clear();
    await closeAllParallel(links);
  }
}
