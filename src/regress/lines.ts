/**
 * The lines of a text file in batches, in memory bounded whatever a line
 * holds: one buffer of the line limit and a read's room, filled by fs.read.
 * A line that outgrows the limit is refused as soon as it does, not gathered
 * first (readline gathers a line until its end: a file without newlines
 * filled memory).
 */
import fs from 'node:fs';
import { InputFileRefused, openRegularFile, sizeText, textStart } from '../bpf/input-file.js';
import { InputFileError } from './errors.js';

/** Bytes asked of each read. */
const READ_SIZE = 1 << 20;

const NEWLINE = 0x0a;

function readInto(fd: number, buf: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, offset, length, null, (e, n) => (e ? reject(e) : resolve(n))));
}

/** Runs `f`, with InputFileRefused as InputFileError (`FILE: what`). */
function refusedAsInput<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof InputFileRefused) throw new InputFileError(file, 0, e.what);
    throw e;
  }
}

/**
 * Throws InputFileError (`FILE: what`) unless `file` is a regular file that
 * starts as UTF-8 text may: for checks before outputs are made.
 */
export function checkReadableFile(file: string): void {
  const { fd } = refusedAsInput(file, () => openRegularFile(file));
  try {
    const head = Buffer.alloc(8);
    refusedAsInput(file, () => textStart(file, head.subarray(0, fs.readSync(fd, head, 0, head.length, 0))));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Yields the lines of `file` (UTF-8; a byte-order mark skipped), a batch per
 * read, without their newlines; the last one also when it has none. A line
 * longer than `limit` bytes throws InputFileError `FILE:LINE: a line longer
 * than …; <why>`, as does a file that is not a regular one or not UTF-8 text.
 * `atEnd`, asked at the end of what was written so far, says whether to read
 * on (a file still growing: `merge --follow`).
 */
export async function* lineBatches(file: string, limit: number, why: string, atEnd?: () => Promise<boolean>): AsyncGenerator<string[]> {
  const { fd } = refusedAsInput(file, () => openRegularFile(file));
  // What a line may hold, and room for the read that finds its end.
  const buf = Buffer.allocUnsafe(limit + READ_SIZE);
  const tooLong = (line: number) => new InputFileError(file, line, `a line longer than ${sizeText(limit)}; ${why}`);
  let start = 0;
  let end = 0;
  let lines = 0;
  try {
    for (let first = true; ; first = false) {
      if (start > 0) {
        buf.copy(buf, 0, start, end);
        end -= start;
        start = 0;
      }
      let n: number;
      try {
        n = await readInto(fd, buf, end, READ_SIZE);
      } catch (e) {
        throw new InputFileError(file, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      if (first) start = refusedAsInput(file, () => textStart(file, buf.subarray(0, n)));
      if (n === 0) {
        if (atEnd !== undefined && (await atEnd())) continue;
        if (end > start) yield [buf.toString('utf8', start, end)];
        return;
      }
      const last = buf.subarray(end, end + n).lastIndexOf(NEWLINE);
      end += n;
      if (last < 0) {
        if (end - start > limit) throw tooLong(lines + 1);
        continue;
      }
      const stop = end - n + last;
      const batch = buf.toString('utf8', start, stop).split('\n');
      // Lines of a batch are shorter than the buffer; only a batch longer than the limit can hold one that is not.
      if (stop - start > limit) {
        const at = batch.findIndex((s) => Buffer.byteLength(s) > limit);
        if (at >= 0) throw tooLong(lines + at + 1);
      }
      lines += batch.length;
      start = stop + 1;
      if (end - start > limit) throw tooLong(lines + 1);
      yield batch;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The lines of a stream (a FIFO, stdin) in batches as they come, without
 * their newlines, in memory bounded as lineBatches': a line longer than
 * `limit` bytes throws InputFileError as soon as it is.
 */
export async function* streamLineBatches(name: string, stream: AsyncIterable<Buffer>, limit: number, why: string): AsyncGenerator<string[]> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lines = 0;
  let first = true;
  for await (let chunk of stream) {
    if (first && chunk.length > 0) {
      first = false;
      chunk = chunk.subarray(refusedAsInput(name, () => textStart(name, chunk)));
    }
    const last = chunk.lastIndexOf(NEWLINE);
    if (last < 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes > limit) throw new InputFileError(name, lines + 1, `a line longer than ${sizeText(limit)}; ${why}`);
      continue;
    }
    const text = Buffer.concat([...pending, chunk.subarray(0, last)]).toString('utf8');
    const rest = chunk.subarray(last + 1);
    pending = rest.length > 0 ? [Buffer.from(rest)] : [];
    pendingBytes = rest.length;
    const batch = text.split('\n');
    const at = batch.findIndex((l) => l.length > limit && Buffer.byteLength(l) > limit);
    if (at >= 0) throw new InputFileError(name, lines + at + 1, `a line longer than ${sizeText(limit)}; ${why}`);
    lines += batch.length;
    yield batch;
  }
  if (pendingBytes > 0) yield [Buffer.concat(pending).toString('utf8')];
}
