/**
 * `--output-file PATH --output-file-max-size BYTES --output-file-max-backups N`:
 * a file destination that never grows past its size. When the next line would
 * not fit, PATH is closed and shifted to PATH.1 (PATH.1 to PATH.2, …, keeping
 * N backups, the oldest deleted) and a new PATH is opened.
 *
 * Lines are never split across files: chunks are cut only after a newline
 * (BatchedWriter hands over whole lines). A single line longer than the limit
 * goes, whole, into a file of its own.
 *
 * `compress` (--output-file-compress): rotated files are gzipped, PATH.1.gz …
 * PATH.N.gz, off the write path (the next rotation waits for the last one).
 * `maxAgeDays` (--output-file-max-age): at each rotation, rotated files last
 * written longer ago than that are deleted, whatever their number.
 */
import fs, { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { OUTPUT_FILE_MODE, ROTATED_FILE_FLAGS } from './files.js';

const write = promisify(fs.write);
const close = promisify(fs.close);
const open = promisify(fs.open);

export interface RotatingFileOptions {
  /** Rotate before a write that would take the file past this many bytes. */
  maxSize: number;
  /** Rotated files kept (PATH.1 … PATH.N); 0 keeps none. */
  maxBackups: number;
  /** Gzip rotated files (PATH.1.gz …). */
  compress?: boolean;
  /** Delete rotated files older than this many days; 0: age does not matter. */
  maxAgeDays?: number;
}

const DAY_MS = 86_400_000;

const NEWLINE = 0x0a;

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

export class RotatingFileWriter extends Writable {
  readonly path: string;
  private readonly maxSize: number;
  private readonly maxBackups: number;
  /** The current file's descriptor: the first one opened and checked by openOutputs, then each made here. */
  private file: number | null;
  private size = 0;
  private rotationCount = 0;
  private readonly suffix: string;
  private readonly maxAgeMs: number;
  /** The gzip of the last rotated file, while it runs. */
  private compressing: Promise<void> = Promise.resolve();

  constructor(path: string, fd: number, opts: RotatingFileOptions) {
    // Checked before super(): the stream opens the file on the next tick.
    if (!Number.isSafeInteger(opts.maxSize) || opts.maxSize < 1) throw new RangeError(`max size ${opts.maxSize} is not a positive size`);
    if (!Number.isSafeInteger(opts.maxBackups) || opts.maxBackups < 0) throw new RangeError(`max backups ${opts.maxBackups} is not a count`);
    super({ decodeStrings: true });
    this.path = path;
    this.maxSize = opts.maxSize;
    this.maxBackups = opts.maxBackups;
    this.suffix = opts.compress ? '.gz' : '';
    this.maxAgeMs = (opts.maxAgeDays ?? 0) * DAY_MS;
    this.file = fd;
  }

  /** The files rotation writes or replaces beside PATH: PATH.1 … PATH.N (.gz), and PATH.1 while it is compressed. */
  static backups(path: string, opts: Pick<RotatingFileOptions, 'maxBackups' | 'compress'>): string[] {
    const suffix = opts.compress ? '.gz' : '';
    const paths = Array.from({ length: opts.maxBackups }, (_, i) => `${path}.${i + 1}${suffix}`);
    return opts.compress && opts.maxBackups > 0 ? [`${path}.1`, ...paths] : paths;
  }

  /** Resolves once every rotated file is written out (compressed, when asked). */
  settled(): Promise<void> {
    return this.compressing;
  }

  /** How many times the file was rotated. */
  get rotations(): number {
    return this.rotationCount;
  }

  /** Bytes in the current file. */
  get currentSize(): number {
    return this.size;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeChunk(chunk).then(() => cb(), (err: Error) => cb(err));
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const all = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.writeChunk(all).then(() => cb(), (err: Error) => cb(err));
  }

  override _final(cb: (err?: Error | null) => void): void {
    Promise.all([this.closeFile(), this.compressing]).then(() => cb(), (err: Error) => cb(err));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    Promise.all([this.closeFile(), this.compressing]).then(() => cb(err), (closeErr: Error) => cb(err ?? closeErr));
  }

  /** Writes `chunk`, rotating at line ends wherever the current file would overflow. */
  private async writeChunk(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const room = this.maxSize - this.size;
      const rest = chunk.length - off;
      if (rest <= room) {
        await this.put(chunk.subarray(off));
        return;
      }
      // The most whole lines that fit: cut after the last newline within the room.
      let cut = room > 0 ? chunk.lastIndexOf(NEWLINE, off + room - 1) : -1;
      if (cut >= off) {
        await this.put(chunk.subarray(off, cut + 1));
        off = cut + 1;
        await this.rotate();
        continue;
      }
      if (this.size > 0) {
        await this.rotate();
        continue;
      }
      // An empty file and a line longer than the limit: that line alone.
      cut = chunk.indexOf(NEWLINE, off);
      const end = cut === -1 ? chunk.length : cut + 1;
      await this.put(chunk.subarray(off, end));
      off = end;
      if (off < chunk.length) await this.rotate();
    }
  }

  private async put(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    const fd = this.file!;
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await write(fd, buf, done, buf.length - done, null);
      done += bytesWritten;
    }
    this.size += buf.length;
  }

  /** Closes PATH, shifts PATH.i to PATH.i+1 (dropping the oldest) and PATH to PATH.1, opens a new PATH. */
  private async rotate(): Promise<void> {
    await this.closeFile();
    // The previous PATH.1 must be whole (compressed) before it moves.
    await this.compressing;
    const backup = (i: number) => `${this.path}.${i}${this.suffix}`;
    if (this.maxBackups === 0) {
      await fsp.unlink(this.path).catch(ignoreMissing);
    } else {
      await fsp.unlink(backup(this.maxBackups)).catch(ignoreMissing);
      for (let i = this.maxBackups - 1; i >= 1; i--) await fsp.rename(backup(i), backup(i + 1)).catch(ignoreMissing);
      await fsp.rename(this.path, `${this.path}.1`);
      if (this.suffix !== '') this.compressing = gzipFile(`${this.path}.1`, backup(1));
    }
    this.file = await open(this.path, ROTATED_FILE_FLAGS, OUTPUT_FILE_MODE);
    this.size = 0;
    this.rotationCount++;
    if (this.maxAgeMs > 0) await this.removeOld(backup);
  }

  /** Deletes rotated files last written before the age limit (the one being compressed is new). */
  private async removeOld(backup: (i: number) => string): Promise<void> {
    const before = Date.now() - this.maxAgeMs;
    for (let i = 2; i <= this.maxBackups; i++) {
      const st = await fsp.stat(backup(i)).catch(() => null);
      if (st !== null && st.mtimeMs < before) await fsp.unlink(backup(i)).catch(ignoreMissing);
    }
  }

  private async closeFile(): Promise<void> {
    const fd = this.file;
    this.file = null;
    if (fd !== null) await close(fd);
  }
}

/** gzips `from` into `to` (made 0600 as every output file, never through a link), then removes `from`. */
async function gzipFile(from: string, to: string): Promise<void> {
  const fd = await open(to, ROTATED_FILE_FLAGS, OUTPUT_FILE_MODE);
  await pipeline(createReadStream(from), createGzip(), createWriteStream(to, { fd }));
  await fsp.unlink(from);
}
