/**
 * Ring records in time order. The ring hands records over in the order their
 * probes reserved them, but a probe reads the clock after reserving: an
 * interrupt between the two (one held back while the ring's lock was taken
 * fires right there), or the hypervisor taking the CPU away, lets records
 * reserved after it, on another CPU or nested on the same one, carry earlier
 * times. So records wait here, sorted by time, until one `window` ns later has
 * been read, or until the ring, read to its end, can no longer hold an earlier
 * one; then they go on in time order.
 *
 * The guarantee: records leave in time order unless one was committed more
 * than `window` after it was reserved. Such a record (one that would go behind
 * a record already out) goes out at once, and is counted.
 *
 * A record waits where the ring has it while the ring is being read; what
 * still waits when the reading ends (the last window's worth) is copied into
 * an arena: records wait as bytes, not as decoded events, which a flood's
 * thousand per millisecond would keep alive across the young generation's
 * collections, at more cost than the rest of the pipeline.
 */

/** A time as its two 32-bit halves, to subtract from a record's without a BigInt. */
export interface Halves {
  hi: number;
  lo: number;
}

export const halves = (ns: bigint): Halves => ({ hi: Number(ns >> 32n), lo: Number(ns & 0xffffffffn) });

/** The u64 time at `at` (little-endian, ns) since `start`, as a number: exact for 104 days. */
export function nsSince(view: DataView, at: number, start: Halves): number {
  return (view.getUint32(at + 4, true) - start.hi) * 4294967296 + (view.getUint32(at, true) - start.lo);
}

/** A record's bytes: `len` of them at `at` (bpf/ringbuf.ts hands records over so). */
export type RecordSink = (view: DataView, bytes: Uint8Array, at: number, len: number) => void;

const aligned = (len: number) => (len + 7) & ~7;
/** Bytes between two records copied as one run (a ring record's header and padding). */
const RUN_GAP = 16;

/** Where a held record's bytes are: the arena, or a buffer lent until settle(). */
const ARENA = 0;

export class RecordOrder {
  private arena: Uint8Array;
  private arenaView: DataView;
  /** The arena's previous buffer, the same size, for the next compaction. */
  private spare: Uint8Array | null = null;
  /** Bytes of the arena in use (held records, and released ones not reclaimed yet). */
  private used = 0;
  /** Buffers lent since the last settle(), by source number - 1 (the ring's, a wrapped record's copy). */
  private readonly lentViews: DataView[] = [];
  private readonly lentBytes: Uint8Array[] = [];
  // Held records, sorted by time (the ring's order among equal times), in [head, tail): where their
  // bytes are. Typed arrays of a capacity that only grows: a flood's records pass through them
  // without an allocation.
  private times = new Float64Array(1024);
  private offsets = new Uint32Array(1024);
  private lengths = new Uint32Array(1024);
  private sources = new Uint8Array(1024);
  private head = 0;
  private tail = 0;
  private newest = -Infinity;
  /** The time of the last record out: an earlier one comes too late. */
  private released = -Infinity;
  /** Records that came too late to be put in order. */
  late = 0;

  constructor(
    /** How long records wait for earlier ones, ns of the records' clock. */
    private readonly window: number,
    /** Where a record goes once it is in order; its bytes stay as they are only during the call. */
    private readonly out: RecordSink,
    initialBytes = 1 << 20,
  ) {
    this.arena = new Uint8Array(initialBytes);
    this.arenaView = new DataView(this.arena.buffer);
  }

  /** A record stamped `time` (ns). Its bytes must stay as they are until settle(). */
  push(view: DataView, bytes: Uint8Array, at: number, len: number, time: number): void {
    if (time < this.released) {
      this.late++;
      this.out(view, bytes, at, len);
      return;
    }
    if (this.tail === this.times.length) this.makeRoom();
    const times = this.times;
    let i = this.tail++;
    // Records come nearly sorted: most go at the end; the rest after every record of their time.
    if (i > this.head && time < times[i - 1]!) {
      let lo = this.head;
      let hi = i - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (times[mid]! <= time) lo = mid + 1;
        else hi = mid;
      }
      this.shift(lo, i);
      i = lo;
    }
    times[i] = time;
    this.sources[i] = this.lent(view, bytes);
    this.offsets[i] = at;
    this.lengths[i] = len;
    if (time > this.newest) {
      this.newest = time;
      if (times[this.head]! <= time - this.window) this.releaseUpTo(time - this.window);
    }
  }

  /** Every record stamped `bound` or before goes out: nothing earlier can come any more. */
  releaseUpTo(bound: number): void {
    const times = this.times;
    let head = this.head;
    while (head < this.tail && times[head]! <= bound) {
      this.released = times[head]!;
      const source = this.sources[head]!;
      const at = this.offsets[head]!;
      const len = this.lengths[head]!;
      this.head = ++head;
      if (source === ARENA) this.out(this.arenaView, this.arena, at, len);
      else this.out(this.lentViews[source - 1]!, this.lentBytes[source - 1]!, at, len);
    }
    if (head === this.tail) this.head = this.tail = this.used = 0;
  }

  /**
   * The records pushed since the last settle() that still wait are copied:
   * their buffers may change now. They are the last ones read, mostly one
   * after another in the ring: copied a run at a time.
   */
  settle(): void {
    const sources = this.sources;
    let need = 0;
    for (let i = this.head; i < this.tail; i++) if (sources[i] !== ARENA) need += aligned(this.lengths[i]!) + RUN_GAP;
    if (need > 0) {
      if (this.used + need > this.arena.length) this.compact(need);
      let run = ARENA;
      let start = 0;
      let end = 0;
      let to = this.used;
      for (let i = this.head; i < this.tail; i++) {
        const source = sources[i]!;
        if (source === ARENA) continue;
        const at = this.offsets[i]!;
        // The next record of the run: the same buffer, just after (a ring record's header between them).
        if (source !== run || at < end || at - end > RUN_GAP) {
          if (run !== ARENA) to = this.copyRun(run, start, end, to);
          run = source;
          start = end = at;
        }
        end = at + this.lengths[i]!;
        sources[i] = ARENA;
        this.offsets[i] = to + (at - start);
      }
      this.used = this.copyRun(run, start, end, to);
    }
    this.lentViews.length = this.lentBytes.length = 0;
  }

  /** At the end: everything held goes out. */
  flush(): void {
    this.releaseUpTo(Infinity);
    this.lentViews.length = this.lentBytes.length = 0;
  }

  /** Records waiting. */
  get size(): number {
    return this.tail - this.head;
  }

  /** The source number of a lent buffer (the ring's, mostly: the last one is looked at first). */
  private lent(view: DataView, bytes: Uint8Array): number {
    const n = this.lentBytes.length;
    if (n > 0 && this.lentBytes[n - 1] === bytes) return n;
    for (let i = 0; i < n - 1; i++) if (this.lentBytes[i] === bytes) return i + 1;
    this.lentViews.push(view);
    this.lentBytes.push(bytes);
    return n + 1;
  }

  /** Copies bytes [start, end) of a lent buffer into the arena at `to`; where the next run goes. */
  private copyRun(source: number, start: number, end: number, to: number): number {
    this.arena.set(this.lentBytes[source - 1]!.subarray(start, end), to);
    return aligned(to + end - start);
  }

  /** Records [from, to) move one place up (to is free). */
  private shift(from: number, to: number): void {
    this.times.copyWithin(from + 1, from, to);
    this.offsets.copyWithin(from + 1, from, to);
    this.lengths.copyWithin(from + 1, from, to);
    this.sources.copyWithin(from + 1, from, to);
  }

  /** Room for one more at the tail: the held records moved down to 0 (when they fill a quarter at most), or arrays twice as long. */
  private makeRoom(): void {
    const { head, tail } = this;
    const n = (tail - head) * 4 <= this.times.length ? this.times.length : this.times.length * 2;
    const move = <A extends Float64Array | Uint32Array | Uint8Array>(a: A, b: A): A => {
      if (a === b) a.copyWithin(0, head, tail);
      else b.set(a.subarray(head, tail));
      return b;
    };
    const same = n === this.times.length;
    this.times = move(this.times, same ? this.times : new Float64Array(n));
    this.offsets = move(this.offsets, same ? this.offsets : new Uint32Array(n));
    this.lengths = move(this.lengths, same ? this.lengths : new Uint32Array(n));
    this.sources = move(this.sources, same ? this.sources : new Uint8Array(n));
    this.head = 0;
    this.tail = tail - head;
  }

  /** Moves the records the arena holds to the start of one with room for `more` bytes beside them (half of it free). */
  private compact(more: number): void {
    let held = more;
    for (let i = this.head; i < this.tail; i++) if (this.sources[i] === ARENA) held += aligned(this.lengths[i]!);
    let size = this.arena.length;
    while (held * 2 > size) size *= 2;
    const to = this.spare !== null && this.spare.length === size ? this.spare : new Uint8Array(size);
    let used = 0;
    for (let i = this.head; i < this.tail; i++) {
      if (this.sources[i] !== ARENA) continue;
      const at = this.offsets[i]!;
      const len = this.lengths[i]!;
      to.set(this.arena.subarray(at, at + len), used);
      this.offsets[i] = used;
      used += aligned(len);
    }
    this.spare = this.arena.length === size ? this.arena : null;
    this.arena = to;
    this.arenaView = new DataView(to.buffer);
    this.used = used;
  }
}
