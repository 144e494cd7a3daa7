/**
 * Native memory seen from JavaScript (koffi): addresses, views over mapped
 * memory, C strings, and short-lived blocks for attributes that carry pointers.
 */
import koffi from 'koffi';

export type Ptr = bigint;

export function isNull(p: unknown): boolean {
  return p === null || p === 0n || p === undefined;
}

/** An ArrayBuffer over native memory (e.g. an mmap'ed ring). */
export function viewOf(p: Ptr, len: number): ArrayBuffer {
  return koffi.view(p, len);
}

/** Reads a NUL-terminated C string. */
export function cString(p: Ptr): string {
  return koffi.decode(p, 'char', -1) as string;
}

/** Copies `len` bytes of native memory into a Buffer. */
export function copyBytes(p: Ptr, len: number): Buffer {
  // One copy into a fresh buffer (Buffer.from of a typed array copies it through a slower path).
  const out = Buffer.allocUnsafe(len);
  out.set(new Uint8Array(koffi.view(p, len)));
  return out;
}

/**
 * C strings in native memory that stay put (for attributes that carry
 * pointers, such as perf_event_attr.kprobe_func), with their addresses and an
 * array of those addresses. Freed with free().
 */
export function nativeStrings(strings: string[]): { addresses: bigint[]; array: bigint; free: () => void } {
  const blocks = strings.map((s) => {
    const bytes = Buffer.from(`${s}\0`);
    const p = koffi.alloc('uint8_t', bytes.length);
    koffi.encode(p, 'uint8_t', [...bytes], bytes.length);
    return p;
  });
  const addresses = blocks.map((p) => koffi.address(p) as bigint);
  const array = koffi.alloc('uint64_t', Math.max(1, addresses.length));
  koffi.encode(array, 'uint64_t', addresses, addresses.length);
  return {
    addresses,
    array: koffi.address(array) as bigint,
    free: () => {
      for (const p of blocks) koffi.free(p);
      koffi.free(array);
    },
  };
}

/**
 * Native memory of `size` bytes for the duration of `fn`, which gets its
 * address (for syscall attributes that carry pointers) and returns a result;
 * the bytes are copied out afterwards. `init` gives the memory's first bytes.
 */
export function withNativeMemory<T>(size: number, fn: (address: bigint) => T,
  init?: (address: bigint) => Buffer): { result: T; bytes: Buffer } {
  const p = koffi.alloc('uint8_t', Math.max(1, size));
  try {
    const address = koffi.address(p) as bigint;
    // Through a view of the block: koffi's encode and decode of a byte array cost ~160 µs for 512 bytes, a view ~14.
    const view = new Uint8Array(koffi.view(p, Math.max(1, size)));
    view.fill(0);
    // What the kernel reads before it writes (info requests that carry their own pointers).
    const first = init?.(address);
    if (first) view.set(first.subarray(0, Math.min(size, first.length)));
    const result = fn(address);
    const bytes = Buffer.allocUnsafe(size);
    bytes.set(view.subarray(0, size));
    return { result, bytes };
  } finally {
    koffi.free(p);
  }
}
