/**
 * Typed handles on maps, for making and reading them from user space. A
 * handle owns its map's fd (made here, or by BpfMap.createLike) or borrows
 * one (an object's), as its Fd says.
 */
import { BpfError, remedyFor } from './errors.js';
import { Fd } from './fd.js';
import { libbpf } from './native/libbpf.js';

/** Map types of include/uapi/linux/bpf.h made directly. */
export const MapType = { RINGBUF: 27 } as const;

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

export interface MapSpec {
  type: number;
  /** The kernel keeps 15 characters. */
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
}

/** A map by its fd. */
export class LoadedMap {
  constructor(readonly fd: Fd) {}

  /** A new map; the handle owns it. */
  static create(spec: MapSpec): LoadedMap {
    const fd = libbpf.map_create(spec.type, spec.name.slice(0, 15), spec.keySize, spec.valueSize, spec.maxEntries, spec.flags ?? 0);
    if (fd < 0) throw new BpfError(`creating map ${spec.name}`, fd, [], remedyFor(fd));
    return new LoadedMap(Fd.own(fd));
  }

  close(): void {
    this.fd.close();
  }
}

/** BPF_MAP_TYPE_PERCPU_ARRAY of u64 counters. */
export class PerCpuArray extends LoadedMap {
  /** The counter at `index`, summed over CPUs; 0 when it cannot be read. */
  sum(index = 0): bigint {
    const value = Buffer.alloc(numPossibleCpus() * 8);
    if ((libbpf.map_lookup_elem(this.fd.raw, u32Key(index), value) as number) < 0) return 0n;
    let sum = 0n;
    for (let i = 0; i < value.length; i += 8) sum += value.readBigUInt64LE(i);
    return sum;
  }
}

/** A hash map (plain or LRU), walked by key. */
export class HashMap extends LoadedMap {
  constructor(fd: Fd, readonly keySize: number) {
    super(fd);
  }

  /** Number of keys (walks the map: for an end-of-run report, not a hot path). */
  count(): number {
    let prev: Buffer | null = null;
    const next = Buffer.alloc(this.keySize);
    let n = 0;
    while ((libbpf.map_get_next_key(this.fd.raw, prev, next) as number) === 0) {
      n++;
      prev = Buffer.from(next);
    }
    return n;
  }
}

/** BPF_MAP_TYPE_STACK_TRACE: stack ids → instruction pointers. */
export class StackTraceMap extends LoadedMap {
  constructor(fd: Fd, readonly depth = 127) {
    super(fd);
  }

  /** The stack with id `id`, innermost first, without trailing zeros; [] when unknown. */
  read(id: number): bigint[] {
    const value = Buffer.alloc(this.depth * 8);
    if ((libbpf.map_lookup_elem(this.fd.raw, u32Key(id), value) as number) < 0) return [];
    const out: bigint[] = [];
    for (let i = 0; i < value.length; i += 8) {
      const ip = value.readBigUInt64LE(i);
      if (ip === 0n) break;
      out.push(ip);
    }
    return out;
  }
}
