/**
 * Lines encoded straight into bytes. A line joined as a string is a rope of a
 * dozen pieces that the engine has to flatten, then encode to UTF-8, to write
 * it: measured on a JSON record, ~300 ns of ~800, more than building it. So
 * the pieces that repeat from record to record are kept as bytes and copied,
 * numbers are written as digits, and only rare, free-form parts (a verdict, a
 * stack) go through strings. The writer's batch buffer is the usual target
 * (BatchedWriter.beginLine); lineText() encodes into a scratch buffer for
 * callers that want the string.
 */

/** Where an encoder writes: a buffer that can grow. */
export interface LineTarget {
  /** A buffer holding the bytes before `at`, with at least `min` bytes free from `at`. */
  room(at: number, min: number): Buffer;
}

const DIGIT0 = 0x30;

/** '000'..'999' as bytes, three each: nine digits are three lookups. */
const DIGITS3 = (() => {
  const t = new Uint8Array(3000);
  for (let i = 0; i < 1000; i++) {
    t[i * 3] = DIGIT0 + Math.floor(i / 100);
    t[i * 3 + 1] = DIGIT0 + (Math.floor(i / 10) % 10);
    t[i * 3 + 2] = DIGIT0 + (i % 10);
  }
  return t;
})();

/** The bytes of a string, UTF-8: what cached pieces are kept as. */
export function utf8(s: string): Uint8Array {
  return Buffer.from(s, 'utf8');
}

/** No bytes: what a cache slot holds before its first piece. */
export const NO_BYTES: Uint8Array = Buffer.alloc(0);

export class LineEncoder {
  private buf = NO_BYTES as Buffer;
  /** A view of `buf` for writing words, made when the buffer changes. */
  private view = new DataView(NO_BYTES.buffer, NO_BYTES.byteOffset, 0);
  /** Where the next byte goes. */
  at = 0;

  constructor(private readonly target: LineTarget) {}

  /** Starts at `at` of the target, with room for a typical line already made. */
  begin(at: number): void {
    this.at = at;
    this.use(this.target.room(at, 4096));
  }

  private use(buf: Buffer): Buffer {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    }
    return buf;
  }

  /** Encoded bytes so far: the buffer the line is in (valid until the next write). */
  get buffer(): Buffer {
    return this.buf;
  }

  private ensure(n: number): Buffer {
    const buf = this.buf;
    if (buf.length - this.at >= n) return buf;
    return this.use(this.target.room(this.at, n));
  }

  /** Copies bytes (a cached piece). */
  bytes(b: Uint8Array): void {
    const buf = this.ensure(b.length);
    buf.set(b, this.at);
    this.at += b.length;
  }

  /** One byte (an ASCII character). */
  byte(c: number): void {
    const buf = this.ensure(1);
    buf[this.at++] = c;
  }

  /** A number as String(n) writes it; integers 0..2^32-1 digit by digit. */
  number(n: number): void {
    if (n >>> 0 !== n) {
      this.text(String(n));
      return;
    }
    let len = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
    const buf = this.ensure(len);
    let i = this.at + len;
    while (n >= 10) {
      const q = Math.floor(n / 10);
      buf[--i] = DIGIT0 + n - q * 10;
      n = q;
    }
    buf[--i] = DIGIT0 + n;
    this.at += len;
  }

  /** Nanoseconds into a second (0..999999999) as exactly 9 digits. */
  nanos9(frac: number): void {
    this.ensure(9);
    this.at += 9;
    this.nanos9At(this.at - 9, frac);
  }

  /** Writes nanos9's digits over the 9 bytes at `at`, already written (a copied line's placeholder). */
  nanos9At(at: number, frac: number): void {
    const buf = this.buf;
    const a = Math.floor(frac / 1_000_000);
    const r = frac - a * 1_000_000;
    const b = Math.floor(r / 1000);
    this.digits3(buf, at, a);
    this.digits3(buf, at + 3, b);
    this.digits3(buf, at + 6, r - b * 1000);
  }

  /**
   * Writes `words` over the bytes at `at`, already written, four bytes a word,
   * little-endian: fixed-width ASCII kept as words goes in a few stores, where
   * a copy of bytes costs a call.
   */
  wordsAt(at: number, words: Uint32Array): void {
    const view = this.view;
    for (let i = 0; i < words.length; i++) view.setUint32(at + i * 4, words[i]!, true);
  }

  private digits3(buf: Buffer, at: number, n: number): void {
    const d = n * 3;
    buf[at] = DIGITS3[d]!;
    buf[at + 1] = DIGITS3[d + 1]!;
    buf[at + 2] = DIGITS3[d + 2]!;
  }

  /** A string, UTF-8 encoded. */
  text(s: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const buf = this.ensure(s.length * 3);
    this.at += buf.write(s, this.at);
  }
}

/** A growable buffer of its own, for encoding lines outside a writer. */
class Scratch implements LineTarget {
  private buf = Buffer.allocUnsafe(16 * 1024);

  room(at: number, min: number): Buffer {
    if (this.buf.length - at >= min) return this.buf;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, at + min));
    this.buf.copy(next, 0, 0, at);
    return (this.buf = next);
  }
}

const scratch = new LineEncoder(new Scratch());

/** What `encode` writes, as a string: the same bytes the sinks write, for tests and other callers. */
export function lineText(encode: (enc: LineEncoder) => void): string {
  scratch.begin(0);
  encode(scratch);
  return scratch.buffer.toString('utf8', 0, scratch.at);
}
