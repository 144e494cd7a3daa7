/**
 * Kernel text symbols from /proc/kallsyms, for turning caller addresses and
 * stack frames into `function+0xoff`.
 *
 * Addresses are kept as two Uint32Array halves sorted by address, so a lookup
 * is a binary search over plain numbers with no BigInt work per step.
 */

import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

export interface SymbolHit {
  name: string;
  /** Bytes past the start of the symbol. */
  offset: number;
  address: bigint;
}

/** Offsets past this are taken as "not in any known function" rather than a giant function. */
export const MAX_SYMBOL_OFFSET = 1 << 20;

/** What a trace looks symbols up with. */
export type Symbols = Pick<Kallsyms, 'lookup' | 'format'>;

/** Symbols read on a thread of their own (backgroundKallsyms). */
export interface BackgroundSymbols extends Symbols {
  /** Resolves once the file's bytes are here (true: from the thread; false: read here, or the thread failed). */
  ready: Promise<boolean>;
}

/**
 * The thread's program (CommonJS, evaluated): reads workerData.path whole,
 * scans it, and posts the bytes with the scan. A function, so that
 * scanKallsyms (declared below) is defined when the source is built.
 */
const reader = () => `
const { openSync, readSync, closeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const fd = openSync(workerData.path, 'r');
let buf = Buffer.allocUnsafe(8 << 20);
let len = 0;
for (let n; (n = readSync(fd, buf, len, buf.length - len, null)) > 0;) {
  len += n;
  if (len === buf.length) {
    const more = Buffer.allocUnsafe(buf.length * 2);
    buf.copy(more, 0, 0, len);
    buf = more;
  }
}
closeSync(fd);
const bytes = new Uint8Array(len);
bytes.set(buf.subarray(0, len));
const { hi, lo, spans } = (${scanKallsyms.toString()})(bytes);
parentPort.postMessage({ bytes, hi, lo, spans }, [bytes.buffer, hi.buffer, lo.buffer, spans.buffer]);
`;

/**
 * /proc/kallsyms read and scanned on a thread of its own. The file comes
 * 4 KiB a read(2): 1300 reads, ~40 ms of the kernel's time, 150 and more
 * under a flood; read here, or a read at a time on libuv's pool between turns
 * of a busy event loop, it is done late. Scanned here at the first lookup, it
 * held up the first record that names a caller by 35 ms (90 cold, at the
 * start of a trace), and the ring's reader with it. The thread runs the few
 * lines of its program and scanKallsyms's source, not a module: a worker that
 * loads modules took ~170 ms of CPU against ~85. A lookup before the scan is
 * here reads the file itself. Symbols of BPF programs loaded
 * later are not in it: their stack frames stay addresses (see dropProbeFrames).
 */
export function backgroundKallsyms(path = '/proc/kallsyms'): BackgroundSymbols {
  let scanned: (ScannedSymbols & { bytes: Uint8Array }) | null = null;
  let symbols: Kallsyms | null = null;
  let worker: Worker | null = null;
  let done: (fromThread: boolean) => void = () => {};
  const ready = new Promise<boolean>((resolve) => (done = resolve));
  try {
    worker = new Worker(reader(), { eval: true, workerData: { path } });
    worker.unref();
    worker.once('message', (m: ScannedSymbols & { bytes: Uint8Array }) => {
      const fromThread = symbols === null;
      if (fromThread) scanned = m;
      void worker?.terminate();
      worker = null;
      done(fromThread);
    });
    // The first lookup reads the file itself and says what is wrong with it.
    worker.once('error', () => {
      worker = null;
      done(false);
    });
    worker.once('exit', () => {
      worker = null;
      done(false);
    });
  } catch {
    worker = null;
    done(false);
  }
  const table = (): Kallsyms => {
    if (symbols === null) {
      if (scanned !== null) {
        const { bytes } = scanned;
        symbols = Kallsyms.of(scanned, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        scanned = null;
      } else {
        void worker?.terminate();
        worker = null;
        symbols = Kallsyms.load(path);
        done(false);
      }
    }
    return symbols;
  };
  return { lookup: (addr) => table().lookup(addr), format: (addr) => table().format(addr), ready };
}

let ahead: BackgroundSymbols | null = null;

/**
 * Starts reading the kernel's symbols for the trace about to start: before
 * its plan, while this thread plans and the other core is idle, so that they
 * are here when its first records are. Read once the probes were attached,
 * they were read beside the traffic, slowed by it, and under a flood the ring
 * overflowed before the first caller could be named.
 */
export function readKernelSymbolsAhead(): void {
  ahead ??= backgroundKallsyms();
}

/** The symbols for a trace starting now: those read ahead for it, else read from now. Each trace its own: modules come and go. */
export function kernelSymbols(): BackgroundSymbols {
  const symbols = ahead ?? backgroundKallsyms();
  ahead = null;
  return symbols;
}

export class Kallsyms {
  /**
   * Each symbol's name is a span of the file's bytes (and its module's, when
   * it has one), read into a string only when asked: 120k strings made at
   * start-up cost tens of MB of heap that stays with the process.
   */
  private readonly names = new Map<number, string>();
  private byName: Map<string, number> | null = null;

  private constructor(
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    private readonly text: Buffer,
    /** Name start and length, module start and length (0: none), per symbol. */
    private readonly spans: Uint32Array,
  ) {}

  static load(path = '/proc/kallsyms'): Kallsyms {
    return parseKallsyms(readFileSync(path));
  }

  /** The table over a scan of `text`. */
  static of(scanned: ScannedSymbols, text: Buffer): Kallsyms {
    return new Kallsyms(scanned.hi, scanned.lo, text, scanned.spans);
  }

  get size(): number {
    return this.hi.length;
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
    return { name: this.nameAt(i), offset, address: this.addressAt(i) };
  }

  /** `name+0xoff` (`name+0xoff [module]` in a module), or the address in hex when no symbol covers it. */
  format(addr: bigint): string {
    const hi = Number((addr >> 32n) & 0xffffffffn);
    const lo = Number(addr & 0xffffffffn);
    const i = this.indexOf(hi, lo);
    if (i < 0) return `0x${addr.toString(16)}`;
    const offset = (hi - this.hi[i]!) * 0x1_0000_0000 + (lo - this.lo[i]!);
    const sp = this.spans;
    const fn = this.text.toString('latin1', sp[4 * i]!, sp[4 * i]! + sp[4 * i + 1]!);
    const modLen = sp[4 * i + 3]!;
    return modLen === 0
      ? `${fn}+0x${offset.toString(16)}`
      : `${fn}+0x${offset.toString(16)} [${this.text.toString('latin1', sp[4 * i + 2]!, sp[4 * i + 2]! + modLen)}]`;
  }

  /**
   * Address of a symbol by name (`name` or `name [module]`); a bare name finds
   * the first listed, which is the core kernel's before any module's.
   */
  addressOf(name: string): bigint | null {
    if (!this.byName) {
      const map = new Map<string, number>();
      // Walk in reverse so the earliest address wins on duplicates (static functions).
      for (let i = this.size - 1; i >= 0; i--) {
        const full = this.nameAt(i);
        map.set(full, i);
        const sp = full.indexOf(' [');
        if (sp > 0) {
          const bare = full.slice(0, sp);
          const prev = map.get(bare);
          // Core kernel symbols take precedence over module ones.
          if (prev === undefined || this.nameAt(prev).includes(' [')) map.set(bare, i);
        }
      }
      this.byName = map;
    }
    const i = this.byName.get(name);
    return i === undefined ? null : this.addressAt(i);
  }

  /** `name`, or `name [module]`. */
  nameAt(i: number): string {
    let name = this.names.get(i);
    if (name === undefined) {
      const sp = this.spans;
      name = this.text.toString('latin1', sp[4 * i]!, sp[4 * i]! + sp[4 * i + 1]!);
      if (sp[4 * i + 3]! > 0) name += ` [${this.text.toString('latin1', sp[4 * i + 2]!, sp[4 * i + 2]! + sp[4 * i + 3]!)}]`;
      this.names.set(i, name);
    }
    return name;
  }

  addressAt(i: number): bigint {
    return (BigInt(this.hi[i]!) << 32n) | BigInt(this.lo[i]!);
  }
}

/** Symbols as scanned from the file: address halves sorted, with their name and module spans in its bytes. */
export interface ScannedSymbols {
  hi: Uint32Array;
  lo: Uint32Array;
  /** Name start and length, module start and length (0: none), per symbol. */
  spans: Uint32Array;
}

/**
 * Scans /proc/kallsyms: `<hex address> <type> <name>[\t[module]]`, read as
 * bytes; keeps text (t/T) and weak (w/W) symbols, sorted by address (stable:
 * equal addresses keep the file's order). Symbols at address 0 (addresses
 * hidden by kptr_restrict) are dropped. It refers to nothing outside its
 * body: the reading thread runs its source as well (READER).
 */
export function scanKallsyms(text: Uint8Array): ScannedSymbols {
  const hexValue = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);
  const isText = (c: number) => c === 0x74 || c === 0x54 || c === 0x77 || c === 0x57;
  const len = text.length;
  // Roughly 40 bytes a line; grown when short.
  let cap = Math.max(16, (len / 32) | 0);
  let hi = new Uint32Array(cap);
  let lo = new Uint32Array(cap);
  let spans = new Uint32Array(4 * cap);
  let n = 0;
  let pos = 0;
  while (pos < len) {
    let eol = text.indexOf(0x0a, pos);
    if (eol < 0) eol = len;
    const line = pos;
    pos = eol + 1;
    let end = eol;
    while (end > line && (text[end - 1] === 0x0d || text[end - 1] === 0x20)) end--;
    // The address: up to 16 hex digits, as two 32-bit halves.
    let h = 0;
    let l = 0;
    let i = line;
    let bad = false;
    for (; i < end && text[i] !== 0x20; i++) {
      const v = hexValue(text[i]!);
      if (v < 0 || i - line >= 16) {
        bad = true;
        break;
      }
      h = ((h << 4) | (l >>> 28)) >>> 0;
      l = ((l << 4) | v) >>> 0;
    }
    if (bad || i === line || i + 3 > end || text[i + 2] !== 0x20 || !isText(text[i + 1]!) || (h === 0 && l === 0)) continue;
    const nameStart = i + 3;
    let tab = nameStart;
    while (tab < end && text[tab] !== 0x09) tab++;
    const nameLen = tab - nameStart;
    if (nameLen === 0) continue;
    let modStart = 0;
    let modLen = 0;
    if (tab < end) {
      // `name\t[module]`
      let a = tab + 1;
      let b = end;
      while (a < b && text[a] === 0x20) a++;
      if (text[a] === 0x5b && text[b - 1] === 0x5d) {
        a++;
        b--;
      }
      modStart = a;
      modLen = Math.max(0, b - a);
    }
    if (n === cap) {
      cap *= 2;
      const nh = new Uint32Array(cap); nh.set(hi); hi = nh;
      const nl = new Uint32Array(cap); nl.set(lo); lo = nl;
      const ns = new Uint32Array(4 * cap); ns.set(spans); spans = ns;
    }
    hi[n] = h;
    lo[n] = l;
    spans[4 * n] = nameStart;
    spans[4 * n + 1] = nameLen;
    spans[4 * n + 2] = modStart;
    spans[4 * n + 3] = modLen;
    n++;
  }
  hi = hi.slice(0, n);
  lo = lo.slice(0, n);
  spans = spans.slice(0, 4 * n);
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) {
    if (hi[i]! < hi[i - 1]! || (hi[i] === hi[i - 1] && lo[i]! < lo[i - 1]!)) sorted = false;
  }
  if (sorted) return { hi, lo, spans };
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]! || a - b);
  const shi = new Uint32Array(n);
  const slo = new Uint32Array(n);
  const sspans = new Uint32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const j = order[i]!;
    shi[i] = hi[j]!;
    slo[i] = lo[j]!;
    sspans.set(spans.subarray(4 * j, 4 * j + 4), 4 * i);
  }
  return { hi: shi, lo: slo, spans: sspans };
}

/** /proc/kallsyms's contents, parsed here. */
export function parseKallsyms(input: string | Buffer): Kallsyms {
  const text = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  return Kallsyms.of(scanKallsyms(text), text);
}
