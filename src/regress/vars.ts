/**
 * What differs between two runs of one scenario and is not the datapath's
 * doing: addresses handed out at run time (pod IPs), ephemeral ports, the
 * names of namespaces made per run. Each such value becomes a placeholder,
 * `$a1`, `$p1`, `$n1` (`$node1` for a node), numbered within its flow in the order of the output.
 */
import { parseAddress } from '../decode/addr.js';

export interface Cidr {
  l3: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

/** `192.0.2.0/24`, `2001:db8::/32`, or one address; null when it is none of them. */
export function parseCidr(text: string): Cidr | null {
  const [addr, len, ...rest] = text.trim().split('/');
  if (rest.length > 0 || addr === undefined) return null;
  const a = parseAddress(addr);
  if (!a) return null;
  const max = a.l3 === 4 ? 32 : 128;
  if (len !== undefined && !/^\d+$/.test(len)) return null;
  const prefix = len === undefined ? max : Number(len);
  if (prefix > max) return null;
  return { ...a, prefix, text: text.trim() };
}

export function cidrContains(c: Cidr, address: string): boolean {
  const a = parseAddress(address);
  if (!a || a.l3 !== c.l3) return false;
  for (let bit = 0; bit < c.prefix; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((a.bytes[bit >> 3]! & mask) !== (c.bytes[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** The start of Linux's default ephemeral port range (net.ipv4.ip_local_port_range). */
export const EPHEMERAL_PORTS_FROM = 32768;

export interface VarOptions {
  /** Addresses that differ per run. */
  addresses: Cidr[];
  /** Ports from EPHEMERAL_PORTS_FROM up are client ports the kernel picks. */
  ephemeralPorts: boolean;
  /** Namespace names that differ per run. */
  netns: RegExp | null;
  /** Node names that differ per run (merged traces). */
  node?: RegExp | null;
}

export const NO_VARS: VarOptions = { addresses: [], ephemeralPorts: false, netns: null };

/**
 * Placeholders, each value mapped once, numbered in the order they are asked
 * for. `masked`: every variable value is the bare `$a`, `$p` or `$n` — what
 * sorting uses, so that the order does not depend on the values.
 */
export class Placeholders {
  private readonly addrs = new Map<string, string>();
  private readonly ports = new Map<string, string>();
  private readonly names = new Map<string, string>();
  private readonly nodes = new Map<string, string>();
  private readonly counts = { a: 0, p: 0, n: 0, node: 0 };

  constructor(readonly opts: VarOptions, private readonly masked = false) {}

  private mark(kind: 'a' | 'p' | 'n' | 'node'): string {
    return this.masked ? `$${kind}` : `$${kind}${++this.counts[kind]}`;
  }

  address(a: string): string {
    let p = this.addrs.get(a);
    if (p === undefined) {
      p = this.opts.addresses.some((c) => cidrContains(c, a)) ? this.mark('a') : a;
      this.addrs.set(a, p);
    }
    return p;
  }

  /** A port, as its decimal text. */
  port(text: string): string {
    if (!this.opts.ephemeralPorts || Number(text) < EPHEMERAL_PORTS_FROM) return text;
    let p = this.ports.get(text);
    if (p === undefined) {
      p = this.mark('p');
      this.ports.set(text, p);
    }
    return p;
  }

  netns(name: string): string {
    return this.named(name, this.opts.netns, this.names, 'n');
  }

  node(name: string): string {
    return this.named(name, this.opts.node ?? null, this.nodes, 'node');
  }

  private named(name: string, varies: RegExp | null, seen: Map<string, string>, kind: 'n' | 'node'): string {
    if (varies === null || !varies.test(name)) return name;
    let p = seen.get(name);
    if (p === undefined) {
      p = this.mark(kind);
      seen.set(name, p);
    }
    return p;
  }
}
