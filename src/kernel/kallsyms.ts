/**
 * Kernel text symbols from /proc/kallsyms, for turning caller addresses and
 * stack frames into `function+0xoff`.
 *
 * Addresses are kept as two Uint32Array halves sorted by address, so a lookup
 * is a binary search over plain numbers with no BigInt work per step.
 */

import { readFileSync } from 'node:fs';

export interface SymbolHit {
  name: string;
  /** Bytes past the start of the symbol. */
  offset: number;
  address: bigint;
}

/** Symbol types kept: text (t/T) and weak (w/W) symbols. */
function isTextType(c: number): boolean {
  return c === 0x74 || c === 0x54 || c === 0x77 || c === 0x57;
}

/** Offsets past this are taken as "not in any known function" rather than a giant function. */
export const MAX_SYMBOL_OFFSET = 1 << 20;

export class Kallsyms {
  private readonly hi: Uint32Array;
  private readonly lo: Uint32Array;
  private readonly names: string[];
  private byName: Map<string, number> | null = null;

  private constructor(hi: Uint32Array, lo: Uint32Array, names: string[]) {
    this.hi = hi;
    this.lo = lo;
    this.names = names;
  }

  static load(path = '/proc/kallsyms'): Kallsyms {
    return parseKallsyms(readFileSync(path, 'latin1'));
  }

  /** Builds from unsorted parallel arrays (stable: equal addresses keep input order). */
  static fromParts(hi: Uint32Array, lo: Uint32Array, names: string[]): Kallsyms {
    const n = names.length;
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) {
      if (hi[i]! < hi[i - 1]! || (hi[i] === hi[i - 1] && lo[i]! < lo[i - 1]!)) sorted = false;
    }
    if (sorted) return new Kallsyms(hi, lo, names);
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]! || a - b);
    const shi = new Uint32Array(n);
    const slo = new Uint32Array(n);
    const snames: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const j = order[i]!;
      shi[i] = hi[j]!;
      slo[i] = lo[j]!;
      snames[i] = names[j]!;
    }
    return new Kallsyms(shi, slo, snames);
  }

  get size(): number {
    return this.names.length;
  }

  /**
   * Index of the symbol containing the address given as 32-bit halves, or -1.
   * Among symbols at the same address the first listed wins.
   */
  indexOf(hi: number, lo: number): number {
    const H = this.hi, L = this.lo;
    let a = 0, b = H.length - 1, found = -1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const mh = H[m]!;
      if (mh < hi || (mh === hi && L[m]! <= lo)) { found = m; a = m + 1; } else b = m - 1;
    }
    if (found < 0) return -1;
    const off = (hi - H[found]!) * 0x1_0000_0000 + (lo - L[found]!);
    if (off > MAX_SYMBOL_OFFSET) return -1;
    while (found > 0 && H[found - 1] === H[found] && L[found - 1] === L[found]) found--;
    return found;
  }

  lookup(addr: bigint): SymbolHit | null {
    const hi = Number((addr >> 32n) & 0xffffffffn);
    const lo = Number(addr & 0xffffffffn);
    const i = this.indexOf(hi, lo);
    if (i < 0) return null;
    const offset = (hi - this.hi[i]!) * 0x1_0000_0000 + (lo - this.lo[i]!);
    return { name: this.names[i]!, offset, address: this.addressAt(i) };
  }

  /** `name+0xoff` (`name+0xoff [module]` in a module), or the address in hex when no symbol covers it. */
  format(addr: bigint): string {
    const hi = Number((addr >> 32n) & 0xffffffffn);
    const lo = Number(addr & 0xffffffffn);
    const i = this.indexOf(hi, lo);
    if (i < 0) return `0x${addr.toString(16)}`;
    const offset = (hi - this.hi[i]!) * 0x1_0000_0000 + (lo - this.lo[i]!);
    const name = this.names[i]!;
    const mod = name.indexOf(' [');
    return mod < 0
      ? `${name}+0x${offset.toString(16)}`
      : `${name.slice(0, mod)}+0x${offset.toString(16)}${name.slice(mod)}`;
  }

  /**
   * Address of a symbol by name (`name` or `name [module]`); a bare name finds
   * the first listed, which is the core kernel's before any module's.
   */
  addressOf(name: string): bigint | null {
    if (!this.byName) {
      const map = new Map<string, number>();
      // Walk in reverse so the earliest address wins on duplicates (static functions).
      for (let i = this.names.length - 1; i >= 0; i--) {
        const full = this.names[i]!;
        map.set(full, i);
        const sp = full.indexOf(' [');
        if (sp > 0) {
          const bare = full.slice(0, sp);
          const prev = map.get(bare);
          // Core kernel symbols take precedence over module ones.
          if (prev === undefined || this.names[prev]!.includes(' [')) map.set(bare, i);
        }
      }
      this.byName = map;
    }
    const i = this.byName.get(name);
    return i === undefined ? null : this.addressAt(i);
  }

  nameAt(i: number): string {
    return this.names[i]!;
  }

  addressAt(i: number): bigint {
    return (BigInt(this.hi[i]!) << 32n) | BigInt(this.lo[i]!);
  }
}

/**
 * Parses /proc/kallsyms text: `<hex address> <type> <name>[\t[module]]`.
 * Symbols at address 0 (addresses hidden by kptr_restrict) are dropped.
 */
export function parseKallsyms(text: string): Kallsyms {
  // Roughly 40 bytes a line; grown when short.
  let cap = Math.max(16, (text.length / 32) | 0);
  let hi = new Uint32Array(cap);
  let lo = new Uint32Array(cap);
  const names: string[] = [];
  let n = 0;
  let pos = 0;
  const len = text.length;
  while (pos < len) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = len;
    const line = pos;
    pos = eol + 1;
    const sp1 = text.indexOf(' ', line);
    if (sp1 < 0 || sp1 >= eol || sp1 + 3 > eol) continue;
    if (!isTextType(text.charCodeAt(sp1 + 1)) || text.charCodeAt(sp1 + 2) !== 0x20) continue;
    const digits = sp1 - line;
    if (digits === 0 || digits > 16) continue;
    const split = Math.max(line, sp1 - 8);
    const h = split > line ? parseInt(text.slice(line, split), 16) : 0;
    const l = parseInt(text.slice(split, sp1), 16);
    if (Number.isNaN(h) || Number.isNaN(l) || (h === 0 && l === 0)) continue;
    const nameStart = sp1 + 3;
    let name: string;
    // Scan only this line: indexOf would run ahead to the module section.
    let tab = nameStart;
    while (tab < eol && text.charCodeAt(tab) !== 0x09) tab++;
    if (tab < eol) {
      // `name\t[module]` becomes `name [module]`.
      let modEnd = eol;
      while (modEnd > tab && (text.charCodeAt(modEnd - 1) === 0x20 || text.charCodeAt(modEnd - 1) === 0x0d)) modEnd--;
      name = `${text.slice(nameStart, tab)} ${text.slice(tab + 1, modEnd).trim()}`;
    } else {
      let end = eol;
      if (text.charCodeAt(end - 1) === 0x0d) end--;
      name = text.slice(nameStart, end);
    }
    if (name.length === 0) continue;
    if (n === cap) {
      cap *= 2;
      const nh = new Uint32Array(cap); nh.set(hi); hi = nh;
      const nl = new Uint32Array(cap); nl.set(lo); lo = nl;
    }
    hi[n] = h;
    lo[n] = l;
    names.push(name);
    n++;
  }
  return Kallsyms.fromParts(hi.slice(0, n), lo.slice(0, n), names);
}
