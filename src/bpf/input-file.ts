/**
 * Files pktpath reads but did not write — a BTF blob here; traces,
 * expectations and profiles in the layers above — come from elsewhere: they
 * are read as regular files only, up to a limit of their kind, so that a FIFO,
 * a device (/dev/zero) or a file of gigabytes is refused before it is read,
 * not read until memory runs out. A symbolic link is followed: what it leads
 * to is checked.
 */
import fs from 'node:fs';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Why a file was not read (`what`, without the file's name: the caller says whose file it is). */
export class InputFileRefused extends Error {
  override name = 'InputFileRefused';
  constructor(readonly file: string, readonly what: string) {
    super(`${file}: ${what}`);
  }
}

/** `16 MiB`, `256 KiB`. */
export function sizeText(bytes: number): string {
  return bytes >= MiB && bytes % MiB === 0 ? `${bytes / MiB} MiB` : bytes >= KiB && bytes % KiB === 0 ? `${bytes / KiB} KiB` : `${bytes} bytes`;
}

/** What a file that is not a regular one is, in words; null for a regular file. */
function notRegular(s: fs.Stats): string | null {
  if (s.isFile()) return null;
  if (s.isDirectory()) return 'is a directory';
  const kind = s.isFIFO() ? 'a FIFO' : s.isCharacterDevice() ? 'a character device' : s.isBlockDevice() ? 'a block device'
    : s.isSocket() ? 'a socket' : 'not a file';
  return `not a regular file (${kind})`;
}

const cannotRead = (file: string, e: unknown) =>
  new InputFileRefused(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);

/**
 * Opens a regular file for reading; the caller closes the fd. Checked before
 * it is opened (opening a device can do things) and again once open (the path
 * may have changed between): O_NONBLOCK, so that a FIFO swapped in does not
 * block the open waiting for a writer.
 */
export function openRegularFile(file: string): { fd: number; size: number } {
  let problem: string | null;
  try {
    problem = notRegular(fs.statSync(file));
  } catch (e) {
    throw cannotRead(file, e);
  }
  if (problem) throw new InputFileRefused(file, problem);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw cannotRead(file, e);
  }
  const stat = fs.fstatSync(fd);
  problem = notRegular(stat);
  if (problem) {
    fs.closeSync(fd);
    throw new InputFileRefused(file, problem);
  }
  return { fd, size: stat.size };
}

/**
 * A regular file's bytes, refused past `limit` (`why`: what files of its kind
 * hold, for the message). The size is checked before reading, and the read
 * stops at the limit all the same: the file may grow while it is read.
 */
export function readRegularFile(file: string, limit: number, why: string): Buffer {
  const { fd, size } = openRegularFile(file);
  const tooLarge = () => new InputFileRefused(file, `larger than ${sizeText(limit)}; ${why}`);
  try {
    if (size > limit) throw tooLarge();
    let buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > limit) throw tooLarge();
        const bigger = Buffer.allocUnsafe(Math.min(2 * n, limit + 1));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      let got: number;
      try {
        got = fs.readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        throw cannotRead(file, e);
      }
      if (got === 0) return buf.subarray(0, n);
      n += got;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Starts of files that are not UTF-8 text: what they are, and what to do. */
const NOT_UTF8: ReadonlyArray<[readonly number[], string]> = [
  [[0x1f, 0x8b], 'gzip-compressed: decompress it first (gunzip)'],
  [[0x28, 0xb5, 0x2f, 0xfd], 'zstd-compressed: decompress it first (unzstd)'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz-compressed: decompress it first (unxz)'],
  [[0xff, 0xfe, 0x00, 0x00], 'UTF-32 text (byte-order mark FF FE 00 00): pktpath reads UTF-8'],
  [[0x00, 0x00, 0xfe, 0xff], 'UTF-32 text (byte-order mark 00 00 FE FF): pktpath reads UTF-8'],
  [[0xff, 0xfe], 'UTF-16 text (byte-order mark FF FE): pktpath reads UTF-8 (iconv -f UTF-16 -t UTF-8)'],
  [[0xfe, 0xff], 'UTF-16 text (byte-order mark FE FF): pktpath reads UTF-8 (iconv -f UTF-16 -t UTF-8)'],
];

const UTF8_BOM = [0xef, 0xbb, 0xbf];

const startsWith = (bytes: Uint8Array, magic: readonly number[]) => bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);

/**
 * Where a text file's text starts: after a UTF-8 byte-order mark (editors on
 * Windows write one; JSON and YAML parsers may skip it), else at 0. Throws
 * InputFileRefused naming the format of a compressed or UTF-16 file, which
 * would otherwise read as a parser's complaint about its first character.
 */
export function textStart(file: string, head: Uint8Array): number {
  for (const [magic, what] of NOT_UTF8) if (startsWith(head, magic)) throw new InputFileRefused(file, what);
  return startsWith(head, UTF8_BOM) ? UTF8_BOM.length : 0;
}

/** A regular UTF-8 text file of at most `limit` bytes, as a string (readRegularFile, textStart). */
export function readRegularText(file: string, limit: number, why: string): string {
  const bytes = readRegularFile(file, limit, why);
  return bytes.toString('utf8', textStart(file, bytes));
}
