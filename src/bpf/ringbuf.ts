/**
 * BPF ring buffer reader over mmap: the consumer page (read-write) and the
 * producer page followed by the data area (read-only). Records are read in
 * place; no call into native code per record. The kernel would map the data
 * area a second time behind the first, so that no record wraps, but it maps
 * every page of a ring at once: twice the ring in the tracer's memory. Mapped
 * once, the rare record that wraps is copied whole into a scratch buffer.
 */
import { BpfError } from './errors.js';
import type { LoadedMap } from './maps.js';
import { c, errno } from './native/libc.js';
import { type Ptr, viewOf } from './native/memory.js';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const PAGE = 4096;

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HEADER = 8;

/**
 * Called for each record: `at` is the offset of its payload in `view`/`bytes`.
 * Its bytes stay as they are until drain() gives the batch's space back (a
 * wrapped record's copy too: one drain wraps once at most).
 */
export type RecordHandler = (view: DataView, bytes: Uint8Array, at: number, len: number) => void;

export class RingReader {
  private readonly consumerPtr: Ptr;
  private readonly producerPtr: Ptr;
  private readonly consumer: BigUint64Array;
  private readonly producer: BigUint64Array;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private readonly mask: number;
  private scratch: { view: DataView; bytes: Uint8Array } | null = null;
  private closed = false;

  constructor(map: LoadedMap, readonly size: number) {
    if (size <= 0 || (size & (size - 1)) !== 0 || size % PAGE !== 0) {
      throw new Error(`ring size ${size} must be a power of two and a multiple of ${PAGE}`);
    }
    this.mask = size - 1;
    this.consumerPtr = this.map(map.fd.raw, PAGE, PROT_READ | PROT_WRITE, 0, 'consumer page');
    this.producerPtr = this.map(map.fd.raw, PAGE + size, PROT_READ, PAGE, 'producer page and data');
    this.consumer = new BigUint64Array(viewOf(this.consumerPtr, PAGE), 0, 1);
    this.producer = new BigUint64Array(viewOf(this.producerPtr, PAGE), 0, 1);
    const data = viewOf(this.producerPtr + BigInt(PAGE), size);
    this.view = new DataView(data);
    this.bytes = new Uint8Array(data);
  }

  private map(fd: number, len: number, prot: number, offset: number, what: string): Ptr {
    const p = c.mmap(null, len, prot, MAP_SHARED, fd, offset) as Ptr;
    if (p === null || p === MAP_FAILED) throw new BpfError(`mapping the ring buffer ${what}`, -errno());
    return p;
  }

  /** Bytes written by the kernel and not yet read. */
  pending(): number {
    return Number(this.producer[0]! - this.consumer[0]!);
  }

  /**
   * Hands every complete record to `handler`; returns how many. `read`, when
   * given, is called with that count once the last record is handed over,
   * while their bytes are still in place.
   */
  drain(handler: RecordHandler, maxRecords = Infinity, read?: (count: number) => void): number {
    if (this.closed) return 0;
    let cons = Number(this.consumer[0]!);
    const prod = Number(this.producer[0]!);
    let n = 0;
    while (cons < prod && n < maxRecords) {
      const off = cons & this.mask;
      const hdr = this.view.getUint32(off, true);
      if (hdr & BUSY) break;
      const len = hdr & ~(BUSY | DISCARD);
      if (!(hdr & DISCARD)) {
        if (off + HEADER + len <= this.size) handler(this.view, this.bytes, off + HEADER, len);
        else this.wrapped(handler, off + HEADER, len);
        n++;
      }
      cons += (len + HEADER + 7) & ~7;
    }
    read?.(n);
    // Release the space to the kernel once per batch.
    this.consumer[0] = BigInt(cons);
    return n;
  }

  /** A record whose payload runs past the end of the data area continues at its start (headers are 8 bytes, 8-aligned: never split). */
  private wrapped(handler: RecordHandler, at: number, len: number): void {
    if (this.scratch === null || this.scratch.bytes.length < len) {
      const bytes = new Uint8Array(Math.max(len, 1 << 16));
      this.scratch = { view: new DataView(bytes.buffer), bytes };
    }
    const { view, bytes } = this.scratch;
    const head = Math.max(0, this.size - at);
    bytes.set(this.bytes.subarray(at % this.size, at % this.size + head), 0);
    bytes.set(this.bytes.subarray((at + head) % this.size, (at + head) % this.size + len - head), head);
    handler(view, bytes, 0, len);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    c.munmap(this.consumerPtr, PAGE);
    c.munmap(this.producerPtr, PAGE + this.size);
  }
}
