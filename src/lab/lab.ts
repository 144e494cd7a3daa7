/**
 * A small network lab of namespaces joined by veth pairs, for the demo and
 * the end-to-end tests. It uses documentation addresses only and removes all
 * it made in cleanup(), which the callers run in `finally`.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface VethEnd {
  ns: string;
  ifname: string;
  /** Addresses with prefix, e.g. "192.0.2.1/24", "2001:db8::1/64". */
  addrs: string[];
}

export class Lab {
  readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();

  /** `tag` keeps concurrent labs apart; names stay within IFNAMSIZ-friendly lengths. */
  constructor(readonly tag = `pp${process.pid % 100000}`) {}

  /** Creates namespace `<tag>-<name>` with loopback up; returns its full name. */
  netns(name: string): string {
    const full = `${this.tag}-${name}`;
    ip('netns', 'add', full);
    this.namespaces.push(full);
    ip('-n', full, 'link', 'set', 'lo', 'up');
    return full;
  }

  /** Deletes one namespace of the lab now (a pod going away). */
  removeNetns(full: string): void {
    const i = this.namespaces.indexOf(full);
    if (i >= 0) this.namespaces.splice(i, 1);
    try {
      ip('netns', 'del', full);
    } catch {
      // Already gone.
    }
  }

  /** A veth pair between two namespaces, addressed and up. IPv6 skips DAD so it is usable at once. */
  veth(a: VethEnd, b: VethEnd): void {
    ip('link', 'add', 'pptmp0', 'netns', a.ns, 'type', 'veth', 'peer', 'name', 'pptmp1', 'netns', b.ns);
    ip('-n', a.ns, 'link', 'set', 'pptmp0', 'name', a.ifname);
    ip('-n', b.ns, 'link', 'set', 'pptmp1', 'name', b.ifname);
    for (const end of [a, b]) {
      for (const addr of end.addrs) {
        ip('-n', end.ns, 'addr', 'add', addr, 'dev', end.ifname, ...(addr.includes(':') ? ['nodad'] : []));
      }
      ip('-n', end.ns, 'link', 'set', end.ifname, 'up');
    }
  }

  /** Runs a command inside a namespace and waits for it. */
  exec(ns: string, cmd: string[], timeoutMs = 20_000): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', ns, ...cmd], timeoutMs);
  }

  execSync(ns: string, cmd: string[]): string {
    return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
  }

  /** Starts a long-running command inside a namespace; stopped by cleanup(). */
  spawn(ns: string, cmd: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Applies an nft ruleset (text) inside a namespace. */
  nft(ns: string, ruleset: string): void {
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: ruleset, stdio: ['pipe', 'ignore', 'pipe'] });
  }

  cleanup(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Already gone.
      }
    }
  }
}

/** The classic two-host lab: A (192.0.2.1, 2001:db8::1) — veth — B (192.0.2.2, 2001:db8::2). */
export function twoHosts(lab: Lab): { a: string; b: string } {
  const a = lab.netns('a');
  const b = lab.netns('b');
  lab.veth(
    { ns: a, ifname: 'veth-a', addrs: ['192.0.2.1/24', '2001:db8::1/64'] },
    { ns: b, ifname: 'veth-b', addrs: ['192.0.2.2/24', '2001:db8::2/64'] },
  );
  return { a, b };
}
