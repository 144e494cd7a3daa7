/**
 * The pods of this node by network namespace, as the container runtime tells
 * (./cri.ts), kept current while a trace runs: asked again when a namespace
 * appears. Without an answer pktpath names namespaces by /run/netns and says
 * so once.
 */
import fs from 'node:fs';
import { CriClient, DEFAULT_CRI_SOCKETS, type Pod, podLabel } from './cri.js';

export type { Pod, PodRef } from './cri.js';

export interface PodCatalogOptions {
  /** --cri-socket; null: the default sockets, the first that exists. */
  socket: string | null;
  /** Whether the run needs pods (--filter-pod): then a missing runtime is said too. */
  needed: boolean;
  /** One line for a person. */
  say(line: string): void;
}

export class PodCatalog {
  private byInode = new Map<number, Pod>();
  private client: CriClient | null = null;
  private asking: Promise<void> | null = null;
  private again = false;
  private readonly listeners: Array<() => void> = [];
  /** The runtime failed once: it is not asked again (a hung one would slow every namespace that appears). */
  private down = false;

  private constructor(private readonly socket: string | null, private readonly say: (line: string) => void) {}

  /** The catalog with its first answer (or its fallback said). */
  static async open(o: PodCatalogOptions): Promise<PodCatalog> {
    const socket = o.socket ?? DEFAULT_CRI_SOCKETS.find((s) => fs.existsSync(s)) ?? null;
    const catalog = new PodCatalog(socket, o.say);
    if (socket === null) {
      if (o.needed) o.say(`pktpath: no container runtime socket (${DEFAULT_CRI_SOCKETS.join(', ')}): pods cannot be named, namespaces are named by /run/netns; --cri-socket PATH names the runtime's`);
      return catalog;
    }
    if (!fs.existsSync(socket)) {
      catalog.fail(`no socket at ${socket}`);
      return catalog;
    }
    try {
      catalog.client = new CriClient(socket);
    } catch (e) {
      catalog.fail((e as Error).message);
      return catalog;
    }
    await catalog.refresh();
    return catalog;
  }

  /** Whether the runtime answers (pods can be named). */
  get live(): boolean {
    return this.client !== null && !this.down;
  }

  get pods(): readonly Pod[] {
    return [...this.byInode.values()];
  }

  podOf(inode: number): Pod | undefined {
    return this.byInode.get(inode);
  }

  /** Called after each answer that changed which pod holds which namespace. */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** Asks the runtime again (one question at a time; one more after it when asked meanwhile). */
  refresh(): Promise<void> {
    if (!this.live) return Promise.resolve();
    if (this.asking) {
      this.again = true;
      return this.asking;
    }
    this.asking = (async () => {
      do {
        this.again = false;
        await this.ask();
      } while (this.again && this.live);
    })().finally(() => (this.asking = null));
    return this.asking;
  }

  private async ask(): Promise<void> {
    let answer;
    try {
      answer = await this.client!.pods(new Map([...this.byInode.values()].map((p) => [p.sandboxId, p])));
    } catch (e) {
      this.fail((e as Error).message);
      return;
    }
    // A sandbox on the host's network (found by its pid) is no pod's namespace.
    let host = 0;
    try {
      host = fs.statSync('/proc/1/ns/net').ino;
    } catch {
      // Not ours to read (a user namespace, a hardened /proc): only the runtime's paths name pods then.
    }
    const next = new Map(answer.pods.filter((p) => p.netns !== host).map((p) => [p.netns, p]));
    const changed = next.size !== this.byInode.size ||
      [...next].some(([inode, p]) => this.byInode.get(inode)?.sandboxId !== p.sandboxId);
    this.byInode = next;
    if (changed) for (const fn of this.listeners) fn();
  }

  private fail(why: string): void {
    if (this.down) return;
    this.down = true;
    this.client?.close();
    this.say(`pktpath: the container runtime at ${this.socket} did not answer (${why.split('\n')[0]}): ` +
      'pods are not named, namespaces are named by /run/netns; --cri-socket PATH names another runtime');
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }
}

export { podLabel };
