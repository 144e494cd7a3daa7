/**
 * Typed handles on maps, for reading them from user space. A handle borrows
 * the fd of the object that created the map and is valid while it is open.
 */
import { libbpf } from './native/libbpf.js';

let possibleCpus = 0;
export function numPossibleCpus(): number {
  if (!possibleCpus) possibleCpus = libbpf.num_possible_cpus() as number;
  return possibleCpus;
}

function u32Key(index: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(index);
  return key;
}

/** BPF_MAP_TYPE_PERCPU_ARRAY of u64 counters. */
export class PerCpuArray {
  constructor(readonly fd: number) {}

  /** The counter at `index`, summed over CPUs; 0 when it cannot be read. */
  sum(index = 0): bigint {
    const value = Buffer.alloc(numPossibleCpus() * 8);
    if ((libbpf.map_lookup_elem(this.fd, u32Key(index), value) as number) < 0) return 0n;
    let sum = 0n;
    for (let i = 0; i < value.length; i += 8) sum += value.readBigUInt64LE(i);
    return sum;
  }
}

/** A hash map (plain or LRU), walked by key. */
export class HashMap {
  constructor(readonly fd: number, readonly keySize: number) {}

  /** Number of keys (walks the map: for an end-of-run report, not a hot path). */
  count(): number {
    let prev: Buffer | null = null;
    const next = Buffer.alloc(this.keySize);
    let n = 0;
    while ((libbpf.map_get_next_key(this.fd, prev, next) as number) === 0) {
      n++;
      prev = Buffer.from(next);
    }
    return n;
  }
}

/** BPF_MAP_TYPE_STACK_TRACE: stack ids → instruction pointers. */
export class StackTraceMap {
  constructor(readonly fd: number, readonly depth = 127) {}

  /** The stack with id `id`, innermost first, without trailing zeros; [] when unknown. */
  read(id: number): bigint[] {
    const value = Buffer.alloc(this.depth * 8);
    if ((libbpf.map_lookup_elem(this.fd, u32Key(id), value) as number) < 0) return [];
    const out: bigint[] = [];
    for (let i = 0; i < value.length; i += 8) {
      const ip = value.readBigUInt64LE(i);
      if (ip === 0n) break;
      out.push(ip);
    }
    return out;
  }
}
