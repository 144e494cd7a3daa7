/**
 * The one writer of every output: lines (text, JSON) or encoded bytes
 * (pcapng) are gathered and written in batches. One write(2) per event caps a
 * tracer at a few hundred thousand lines a second, so they go out in
 * batches of ~64 KiB. On a terminal the batch is written at the end of the
 * current turn of the event loop so output stays live; elsewhere a short
 * timer bounds how stale a half-full batch can get (`pktpath | grep` shows
 * matches without waiting for 64 KiB).
 */
import type { Writable } from 'node:stream';
import { LineEncoder, type LineTarget } from './line.js';

export interface BatchedWriterOptions {
  /** Called once when the reader went away (EPIPE, e.g. `| head`): stop quietly. */
  onClosed?: () => void;
  /**
   * Called once on any other write error (disk full, …); writing stops and
   * close() rejects with the error. Without it, onClosed is called instead so
   * the tracer still stops.
   */
  onError?: (err: Error) => void;
  /** Defaults to the destination's own `isTTY`. */
  isTTY?: boolean;
  /** Flush once the batch reaches this many bytes. Default 64 KiB. */
  batchSize?: number;
  /** When not a TTY, flush a non-empty batch after at most this long. Default 100 ms; 0 turns it off. */
  maxDelayMs?: number;
  /** Whether close() ends the destination. Default: yes, except for process.stdout/stderr. */
  end?: boolean;
  /**
   * Bytes the destination may hold unwritten (a blocked pipe, a slow disk);
   * batches past it are dropped and counted, so memory stays bounded. Default 32 MiB.
   */
  maxPendingBytes?: number;
  /** Called once, at the first batch dropped. */
  onDropped?: () => void;
}

export const DEFAULT_BATCH_SIZE = 64 * 1024;
const DEFAULT_MAX_DELAY_MS = 100;
const DEFAULT_MAX_PENDING = 32 * 1024 * 1024;
/** Room past the batch size so a typical line always fits without checking its exact size. */
const SLACK = 16 * 1024;
/**
 * Batch buffers kept for reuse (at most 10 MB). A turn of the reader under a
 * JSON flood fills ~45, and the writes of two turns can be under way at once:
 * with room for 64, the rest were dropped once written, lived on in the old
 * generation, and were freed only by a full collection, which V8 starts
 * after ~64 MB of such memory: a peak RSS of 157 MB against 139 with 128.
 */
const MAX_SPARE = 128;

type Dest = Writable & { isTTY?: boolean };

function isBrokenPipe(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

export class BatchedWriter implements LineTarget {
  private readonly dest: Dest;
  private readonly tty: boolean;
  private readonly batchSize: number;
  private readonly maxDelayMs: number;
  private readonly endOnClose: boolean;
  private readonly onClosed: (() => void) | undefined;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly onDropped: (() => void) | undefined;
  private readonly maxPending: number;
  /** Lines in the current batch, and lines and bytes dropped because the destination did not keep up. */
  private lines = 0;
  private droppedLines = 0;
  private droppedBytes = 0;
  /**
   * Lines are encoded straight into this buffer as they come. Concatenating
   * them into one big string instead costs far more: the rope has to be
   * flattened and encoded again when the batch is written. A buffer is
   * handed to the destination whole, and reused once its write is done.
   */
  private buf: Buffer | null = null;
  /**
   * Batch buffers whose writes are done. A flood writes thousands of batches
   * a second; left to the collector, those that outlived a young-generation
   * collection in the write queue waited for a full one: 40 MB of buffers
   * held under a JSON flood.
   */
  private readonly spare: Buffer[] = [];
  private len = 0;
  /** Encodes lines in place at the end of the batch (beginLine/endLine). */
  private readonly encoder: LineEncoder;
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private isClosed = false;
  private failure: Error | null = null;
  private closing: Promise<void> | null = null;

  constructor(dest: Writable, opts: BatchedWriterOptions = {}) {
    this.dest = dest as Dest;
    this.tty = opts.isTTY ?? this.dest.isTTY === true;
    this.batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
    this.maxDelayMs = opts.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.endOnClose =
      opts.end ?? !((dest as unknown) === process.stdout || (dest as unknown) === process.stderr);
    this.onClosed = opts.onClosed;
    this.onError = opts.onError;
    this.onDropped = opts.onDropped;
    this.maxPending = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING;
    this.encoder = new LineEncoder(this);
    // Stays attached after close(): a final flush may still hit a closed pipe.
    dest.on('error', (err: Error) => this.fail(err));
  }

  /** True once the destination is gone or failed; writes are then dropped. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Appends one line (a newline is added). */
  write(line: string): void {
    if (this.isClosed) return;
    this.beginLine().text(line);
    this.endLine();
  }

  /**
   * Starts a line encoded in place, after the batch's bytes; endLine() adds
   * its newline and takes it into the batch. Nothing may be written between.
   */
  beginLine(): LineEncoder {
    this.encoder.begin(this.len);
    return this.encoder;
  }

  endLine(): void {
    const enc = this.encoder;
    enc.byte(0x0a);
    this.lines++;
    this.commit(enc.at);
  }

  /** What was dropped because the destination did not keep up (lines: of write(); bytes: everything). */
  get dropped(): { lines: number; bytes: number } {
    return { lines: this.droppedLines, bytes: this.droppedBytes };
  }

  /** Appends bytes as they are. */
  writeBytes(bytes: Uint8Array): void {
    if (this.isClosed) return;
    const at = this.len;
    this.buffer(bytes.length).set(bytes, at);
    this.commit(at + bytes.length);
  }

  /** Bytes in the current batch: where the next ones go in buffer(). */
  get length(): number {
    return this.len;
  }

  /**
   * The batch buffer with at least `min` bytes free past `length`, for
   * writers that encode in place (pcapng); commit() what they wrote.
   */
  buffer(min: number): Buffer {
    return this.room(this.len, min);
  }

  /** LineTarget: the batch buffer with the bytes before `at` (at ≥ length) and `min` free from `at`. */
  room(at: number, min: number): Buffer {
    const buf = this.buf;
    if (buf !== null && buf.length - at >= min) return buf;
    return this.grow(at, at + min);
  }

  /** The batch now ends at `end`: the bytes up to it were written into buffer(). */
  commit(end: number): void {
    this.len = end;
    if (end >= this.batchSize) {
      this.flush();
      return;
    }
    this.schedule();
  }

  /** Writes out the current batch now, or drops it when the destination already holds too much. */
  flush(): void {
    this.cancelScheduled();
    if (this.isClosed || this.len === 0) return;
    const lines = this.lines;
    const whole = this.buf!;
    const chunk = this.take();
    if (this.dest.writableLength + chunk.length > this.maxPending) {
      if (this.droppedBytes === 0) this.onDropped?.();
      this.droppedBytes += chunk.length;
      this.droppedLines += lines;
      this.recycle(whole);
      return;
    }
    try {
      // A stream is done with a chunk when it calls back (written, or taken in by a transform).
      this.dest.write(chunk, (err) => {
        if (!err) this.recycle(whole);
      });
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private recycle(buf: Buffer): void {
    if (this.spare.length < MAX_SPARE && buf.length === this.batchSize + SLACK) this.spare.push(buf);
  }

  /** A batch buffer of at least `need` bytes holding the current one's first `keep`. */
  private grow(keep: number, need: number): Buffer {
    const buf = this.buf;
    const size = Math.max(need + SLACK, this.batchSize + SLACK);
    const next = (size === this.batchSize + SLACK ? this.spare.pop() : undefined) ?? Buffer.allocUnsafe(size);
    if (buf !== null) buf.copy(next, 0, 0, keep);
    this.buf = next;
    return next;
  }

  /** Detaches the filled part of the batch. */
  private take(): Buffer {
    const chunk = this.buf!.subarray(0, this.len);
    this.buf = null;
    this.len = 0;
    this.lines = 0;
    return chunk;
  }

  /** Resolves when the destination has room again (immediately unless it asked for a pause). */
  drain(): Promise<void> {
    if (this.isClosed || !this.dest.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.dest.off('drain', done);
        this.dest.off('close', done);
        resolve();
      };
      this.dest.on('drain', done);
      this.dest.on('close', done);
    });
  }

  /**
   * Flushes and ends the destination (process.stdout/stderr are only flushed).
   * Rejects if a write failed for a reason other than a closed pipe.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.cancelScheduled();
    if (!this.isClosed) {
      const chunk = this.len > 0 ? this.take() : null;
      await new Promise<void>((resolve) => {
        const done = (err?: Error | null): void => {
          if (err) this.fail(err);
          resolve();
        };
        try {
          if (this.endOnClose) {
            if (chunk !== null) this.dest.end(chunk, done);
            else this.dest.end(done);
          } else if (chunk !== null || this.dest.writableLength > 0) {
            // The callback of the last write runs after every earlier one.
            this.dest.write(chunk ?? '', done);
          } else {
            resolve();
          }
        } catch (err) {
          done(err as Error);
        }
      });
      this.isClosed = true;
    }
    if (this.failure !== null) throw this.failure;
  }

  private schedule(): void {
    if (this.tty) {
      this.immediate ??= setImmediate(() => {
        this.immediate = null;
        this.flush();
      });
    } else if (this.maxDelayMs > 0 && this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.maxDelayMs);
      this.timer.unref();
    }
  }

  private cancelScheduled(): void {
    if (this.immediate !== null) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private fail(err: Error): void {
    const wasClosed = this.isClosed;
    this.isClosed = true;
    this.buf = null;
    this.len = 0;
    this.cancelScheduled();
    if (isBrokenPipe(err)) {
      if (!wasClosed) this.onClosed?.();
      return;
    }
    if (this.failure !== null) return;
    this.failure = err;
    if (this.onError !== undefined) this.onError(err);
    else if (!wasClosed) this.onClosed?.();
  }
}
