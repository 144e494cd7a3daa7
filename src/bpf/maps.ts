/** Reading maps from user space. */
import { libbpf } from './native.js';

let possibleCpus = 0;
export function numPossibleCpus(): number {
  if (!possibleCpus) possibleCpus = libbpf.num_possible_cpus() as number;
  return possibleCpus;
}

/** Sum over CPUs of a per-CPU array's u64 value at `index`. */
export function sumPerCpuU64(fd: number, index = 0): bigint {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(index);
  const value = Buffer.alloc(numPossibleCpus() * 8);
  if ((libbpf.map_lookup_elem(fd, key, value) as number) < 0) return 0n;
  let sum = 0n;
  for (let i = 0; i < value.length; i += 8) sum += value.readBigUInt64LE(i);
  return sum;
}

/** A stack of a STACK_TRACE map, innermost first, without trailing zeros. */
export function readStack(fd: number, id: number, depth = 127): bigint[] {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(id);
  const value = Buffer.alloc(depth * 8);
  if ((libbpf.map_lookup_elem(fd, key, value) as number) < 0) return [];
  const out: bigint[] = [];
  for (let i = 0; i < value.length; i += 8) {
    const ip = value.readBigUInt64LE(i);
    if (ip === 0n) break;
    out.push(ip);
  }
  return out;
}

/** Number of keys of a hash map (walks it: for an end-of-run report, not a hot path). */
export function countKeys(fd: number, keySize: number): number {
  let prev: Buffer | null = null;
  const next = Buffer.alloc(keySize);
  let n = 0;
  while ((libbpf.map_get_next_key(fd, prev, next) as number) === 0) {
    n++;
    prev = Buffer.from(next);
  }
  return n;
}
