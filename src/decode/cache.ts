/**
 * Small caches for values that recur from record to record — the same skb,
 * process, device and flow at a dozen points a packet — at millions of
 * records a second. One mechanism: direct-mapped, a slot per hash holds the
 * last entry that fell there, and a newer one simply takes its place, so
 * there is nothing to count or clear, and a lookup is an array read and a
 * comparison (SlotCache can also keep two entries per hash, for keys of
 * several parts). SlotCache keeps entries of several fields; NumberText and
 * AddressText, its two commonest uses (a text by one number, by one
 * address), keep their keys in flat arrays, which is what the hottest
 * lookups need.
 */

function checkSize(size: number): void {
  if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`cache size ${size} is not a power of two`);
}

/**
 * Entries by hash, each slot holding one entry from the start: the caller
 * compares the entry's key fields with its own, and on a miss overwrites the
 * entry in place, so a miss allocates nothing and every entry has one shape.
 * The low bits of the hash pick the slot: hashes put what varies there, and
 * stay 32-bit integers (a double would make every lookup take the slow path).
 */
export class SlotCache<E> {
  private readonly slots: E[];
  private readonly mask: number;

  /** `size` slots, a power of two; `empty` makes an entry whose key matches nothing. */
  constructor(size: number, empty: () => E) {
    checkSize(size);
    this.slots = Array.from({ length: size }, empty);
    this.mask = size - 1;
  }

  /** The entry in the slot of `hash`: compare its key before use. */
  at(hash: number): E {
    return this.slots[hash & this.mask]!;
  }

  /**
   * The entry in a second slot of `hash`, from its high bits (`hash` mixed,
   * see mix32): for caches of keys made of several parts, where a few dozen
   * live keys in a direct-mapped table already make a pair that meets in one
   * slot and takes it from each other at every record. Look in at() then
   * here; on a miss in both, fill at()'s entry when it is of no use any more
   * (never filled, or outdated), else this one. (Entries stay in their slots:
   * one moved to another key's second slot would not be found from its own.)
   */
  second(hash: number): E {
    return this.slots[(hash >>> 16) & this.mask]!;
  }
}

/**
 * Spreads every bit of `h` over the low ones (murmur3's finaliser): for keys
 * built of several parts, where adding or xoring the parts' hashes lets two
 * keys that differ in two parts meet in one slot.
 */
export function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Text, as a string or as the bytes of one (see src/output/line.ts). */
export type Text = string | Uint8Array;

/** Strings are kept flat; bytes as they are. */
function kept<T>(t: T): T {
  if (typeof t === 'string') flat(t);
  return t;
}

/** The text made from a number (an inode, a length, an IPv4 address), kept by value. */
export class NumberText<T extends Text = string> {
  // NaN equals nothing: an empty slot is a miss.
  private readonly keys: Float64Array;
  private readonly texts: T[];
  private readonly mask: number;

  constructor(size: number, private readonly make: (n: number) => T) {
    checkSize(size);
    this.keys = new Float64Array(size).fill(NaN);
    this.texts = new Array<T>(size).fill(undefined as unknown as T);
    this.mask = size - 1;
  }

  get(n: number): T {
    // Integer bits only (inodes and IPv4 addresses pass 2^31), the higher ones folded in.
    const slot = (n ^ (n >>> 10) ^ (n >>> 20)) & this.mask;
    if (this.keys[slot] === n) return this.texts[slot]!;
    const text = kept(this.make(n));
    this.keys[slot] = n;
    this.texts[slot] = text;
    return text;
  }
}

/**
 * The text made from a kernel address (an skb), kept by value, with a small
 * number made along with it (e.g. the skb's colour): `note` after get().
 * The text may be any value made from the address (its digits as words).
 */
export class AddressText<T = string> {
  // null matches no address (every BigInt, -1n too, is one).
  private readonly keys: Array<bigint | null>;
  private readonly texts: T[];
  private readonly notes: Uint8Array;
  private readonly mask: number;
  /** The note of the address of the last get(). */
  note = 0;

  /** `noteOf` gives the note (0-255), `make` the text, which may use it. */
  constructor(size: number, private readonly make: (a: bigint, note: number) => T,
    private readonly noteOf: (a: bigint) => number = () => 0) {
    checkSize(size);
    this.keys = new Array<bigint | null>(size).fill(null);
    this.texts = new Array<T>(size).fill(undefined as unknown as T);
    this.notes = new Uint8Array(size);
    this.mask = size - 1;
  }

  /** The slot of the last get(): a packet's records come in runs, and comparing costs less than hashing. */
  private last = 0;

  get(a: bigint): T {
    let slot = this.last;
    if (this.keys[slot] !== a) {
      slot = this.last = addressHash(a) & this.mask;
      if (this.keys[slot] !== a) {
        const note = this.noteOf(a);
        this.texts[slot] = kept(this.make(a, note));
        this.notes[slot] = note;
        this.keys[slot] = a;
      }
    }
    this.note = this.notes[slot]!;
    return this.texts[slot]!;
  }
}

/**
 * A hash of a kernel address (an skb, a conntrack entry) from its low 32 bits,
 * which differ between live objects; they are slab-aligned, so the bits
 * above the alignment are folded down.
 */
export function addressHash(a: bigint): number {
  // asUintN rather than a mask: no BigInt constant to combine, measured a third cheaper.
  const lo = Number(BigInt.asUintN(32, a));
  return (lo >>> 8) ^ (lo >>> 20);
}

/**
 * Flattens a string built by concatenation (the engine flattens in place on
 * indexed access) and returns it. Cached strings are flattened once, so
 * lines that include them do not walk their concatenation tree again every time.
 */
export function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}
