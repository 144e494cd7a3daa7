/**
 * Small caches for values that recur from record to record — the same skb,
 * process, device and flow at a dozen points a packet — at millions of
 * records a second. One mechanism, SlotCache: direct-mapped, a slot per hash
 * holds the last entry that fell there, and a newer one simply takes its
 * place, so there is nothing to evict, count or clear, and a lookup is an
 * array read and a comparison. NumberText and AddressText are its two
 * commonest uses: a text by one number or one address.
 */

/**
 * Entries by hash, each slot holding one entry from the start: the caller
 * compares the entry's key fields with its own, and on a miss overwrites the
 * entry in place, so a miss allocates nothing and every entry has one shape.
 * The low bits of the hash pick the slot: hashes put what varies there.
 */
export class SlotCache<E> {
  private readonly slots: E[];
  private readonly mask: number;

  /** `size` slots, a power of two; `empty` makes an entry whose key matches nothing. */
  constructor(size: number, empty: () => E) {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`cache size ${size} is not a power of two`);
    this.slots = Array.from({ length: size }, empty);
    this.mask = size - 1;
  }

  /** The entry in the slot of `hash`: compare its key before use. */
  at(hash: number): E {
    return this.slots[hash & this.mask]!;
  }
}

/** The text made from a number (an inode, a length, an IPv4 address), kept by value; its low bits pick the slot. */
export class NumberText {
  private readonly cache: SlotCache<{ key: number; text: string }>;

  constructor(size: number, private readonly make: (n: number) => string) {
    // NaN equals nothing: an empty slot is a miss.
    this.cache = new SlotCache(size, () => ({ key: NaN, text: '' }));
  }

  get(n: number): string {
    const c = this.cache.at(n);
    if (c.key === n) return c.text;
    c.key = n;
    return (c.text = flat(this.make(n)));
  }
}

/** The text made from a kernel address (an skb), kept by value. */
export class AddressText {
  private readonly cache: SlotCache<{ key: bigint; text: string }>;

  constructor(size: number, private readonly make: (a: bigint) => string) {
    this.cache = new SlotCache(size, () => ({ key: -1n, text: '' }));
  }

  get(a: bigint): string {
    const c = this.cache.at(addressHash(a));
    if (c.key === a) return c.text;
    c.key = a;
    return (c.text = flat(this.make(a)));
  }
}

/**
 * A hash of a kernel address (an skb, a conntrack entry) from its low 32 bits,
 * which differ between live objects; they are slab-aligned, so the bits
 * above the alignment are folded down.
 */
export function addressHash(a: bigint): number {
  const lo = Number(a & 0xffffffffn);
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
