/**
 * The k-way merge with a bounded reorder window. Every input is read by its
 * own loop; an input more than a window ahead of the slowest waits, so what is
 * held is at most about two windows of records, whatever the traces' length.
 * A record leaves (in time order; ties by node, then input order) once the
 * slowest input has read a window past it: a node's records may come out of
 * order by up to the window (the ring's own order is within 1 ms). An input
 * that is a stream (FIFO, stdin, --follow) and has said nothing for `idleMs`
 * of the wall clock is not waited for (a quiet node must not hold the
 * others): what it says later, older than what has left, is written where it
 * comes and counted as late.
 */

/** A record held: its time (ns, on the merged clock), node, and place in its input. */
export interface Held {
  t: number;
  node: number;
  seq: number;
}

const before = (a: Held, b: Held) => a.t < b.t || (a.t === b.t && (a.node < b.node || (a.node === b.node && a.seq < b.seq)));

/** A binary min-heap of held records, in merge order. */
export class HeldHeap<T extends Held> {
  private readonly a: T[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): T | undefined {
    return this.a[0];
  }
  push(x: T): void {
    const a = this.a;
    let i = a.push(x) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(x, a[p]!)) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }
  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && before(a[r]!, a[l]!) ? r : l;
      if (!before(a[c]!, last)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
}

export interface MergeInputLoop<R> {
  /** The input's items, in its order, a batch at a time. */
  items: AsyncIterable<R[]>;
  /** A stream that may fall quiet (FIFO, stdin, a followed file). */
  stream: boolean;
}

export interface WindowMergeOptions<R> {
  windowNs: number;
  /** A stream quiet this long (wall clock) is not waited for. */
  idleMs: number;
  /** An item's time on its own node's clock (ns); null for an item that is not placed (a header). */
  timeOf(input: number, item: R): number | null;
  /** Added to each input's times to put them on the merged clock; read as it changes (set once offsets are known). */
  offsets: readonly number[];
  /** An item read (in the order read, roughly by time): pairing sees it here. */
  read(input: number, item: R, t: number): void;
  /** The slowest input's time moved (what is older than it by two windows may be forgotten). */
  progress?(slowest: number): void;
  /** Whether to stop reading (SIGINT). */
  stopped?(): boolean;
}

/**
 * Runs the inputs' loops to their end, each waiting while it is more than a
 * window ahead of the slowest input still read; `ready(upTo)` is called as
 * the slowest moves: what is held up to that time (merged clock) may leave.
 */
export async function runWindowed<R>(inputs: ReadonlyArray<MergeInputLoop<R>>, o: WindowMergeOptions<R>, ready: (upTo: number) => Promise<void>): Promise<void> {
  const n = inputs.length;
  const frontier = new Array<number>(n).fill(-Infinity);
  const lastData = new Array<number>(n).fill(Date.now());
  const ended = new Array<boolean>(n).fill(false);
  const waiting: Array<() => void> = [];
  let releasedTo = -Infinity;

  const slowest = () => {
    let m = Infinity;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      if (ended[i] || (inputs[i]!.stream && now - lastData[i]! >= o.idleMs)) continue;
      if (frontier[i]! + o.offsets[i]! < m) m = frontier[i]! + o.offsets[i]!;
    }
    return m;
  };
  const wake = () => {
    for (const w of waiting.splice(0)) w();
  };
  let releasing: Promise<void> = Promise.resolve();
  const fastest = () => Math.max(...frontier.map((f, i) => f + o.offsets[i]!));
  const release = () => {
    const s = slowest();
    const upTo = (s === Infinity ? fastest() : s) - o.windowNs;
    if (upTo > releasedTo) {
      releasedTo = upTo;
      o.progress?.(upTo + o.windowNs);
      releasing = releasing.then(() => ready(upTo));
    }
  };

  const loop = async (i: number) => {
    let count = 0;
    for await (const batch of inputs[i]!.items) {
      if (o.stopped?.()) break;
      lastData[i] = Date.now();
      for (const item of batch) {
        const t = o.timeOf(i, item);
        if (t === null) continue;
        if (t > frontier[i]!) frontier[i] = t;
        o.read(i, item, t);
        if ((++count & 255) === 0) {
          release();
          await releasing;
          // Ahead of the slowest by more than a window: wait for it (a stream quiet long enough is not waited for).
          while (frontier[i]! + o.offsets[i]! > slowest() + o.windowNs && !o.stopped?.()) {
            await new Promise<void>((resolve) => {
              waiting.push(resolve);
              setTimeout(resolve, o.idleMs).unref();
            });
          }
          wake();
        }
      }
    }
    ended[i] = true;
    wake();
    release();
  };
  const ticker = inputs.some((x) => x.stream) ? setInterval(() => { release(); wake(); }, Math.max(50, o.idleMs / 4)) : null;
  try {
    await Promise.all(inputs.map((_, i) => loop(i)));
  } finally {
    if (ticker) clearInterval(ticker);
  }
  await releasing;
  await ready(Infinity);
}
