/**
 * Opening the files a trace writes (--output-file, --output-pcap, record's
 * --out) before anything is attached. Packet data is sensitive: files are
 * created 0600, a symbolic link at the path is refused (O_NOFOLLOW), and an
 * existing file is only replaced when asked (`--force`); a device or a FIFO
 * (`/dev/null`) is written to as it is. Every refusal is one line naming the
 * path and the way out.
 */
import fs from 'node:fs';

const { O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW } = fs.constants;
/** Linux's O_CLOEXEC (Node does not export it): a command pktpath runs (record) inherits no trace file. */
const CLOEXEC = 0o2000000;
export const OUTPUT_FILE_MODE = 0o600;

/** An output path pktpath will not write: the user's to fix (exit 2). */
export class OutputPathError extends Error {
  override name = 'OutputPathError';
}

/** An output file, open; `id` tells two paths naming one file apart. */
export interface OpenedOutput {
  fd: number;
  path: string;
  id: string;
}

function explain(flag: string, path: string, code: string | undefined): string {
  switch (code) {
    case 'EEXIST': return `${flag}: '${path}' exists; pktpath does not overwrite a file unless --force is given`;
    case 'ELOOP': return `${flag}: '${path}' is a symbolic link; pktpath writes packet data only to the file named, never through a link`;
    case 'EISDIR': return `${flag}: '${path}' is a directory; name a file in it`;
    case 'ENOENT': return `${flag}: '${path}': its directory does not exist`;
    case 'ENOTDIR': return `${flag}: '${path}': a part of the path is not a directory`;
    case 'EACCES': case 'EPERM': return `${flag}: '${path}': no permission to create it there`;
    case 'EROFS': return `${flag}: '${path}' is on a read-only file system`;
    default: return `${flag}: cannot create '${path}' (${code ?? 'unknown error'})`;
  }
}

/** Opens `path` for writing, as the rules above say; throws OutputPathError. */
export function openOutputPath(flag: string, path: string, force: boolean): OpenedOutput {
  let existing: fs.Stats | null = null;
  try {
    existing = fs.lstatSync(path);
  } catch {
    // Not there: it is made.
  }
  if (existing?.isDirectory()) throw new OutputPathError(explain(flag, path, 'EISDIR'));
  if (existing?.isSymbolicLink()) throw new OutputPathError(explain(flag, path, 'ELOOP'));
  // A device or a pipe (/dev/null, a FIFO a reader waits on): written to, nothing to replace.
  if (existing?.isCharacterDevice() || existing?.isFIFO()) {
    try {
      const fd = fs.openSync(path, O_WRONLY | O_NOFOLLOW | CLOEXEC);
      return { fd, path, id: `${existing.dev}:${existing.ino}` };
    } catch (e) {
      throw new OutputPathError(explain(flag, path, (e as NodeJS.ErrnoException).code));
    }
  }
  let fd: number;
  try {
    fd = fs.openSync(path, O_WRONLY | O_CREAT | O_NOFOLLOW | CLOEXEC | (force ? O_TRUNC : O_EXCL), OUTPUT_FILE_MODE);
  } catch (e) {
    throw new OutputPathError(explain(flag, path, (e as NodeJS.ErrnoException).code));
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new OutputPathError(`${flag}: '${path}' is not a regular file`);
  }
  // A file that existed (--force) keeps its owner but not a mode others can read.
  if ((st.mode & 0o777) !== OUTPUT_FILE_MODE) fs.fchmodSync(fd, OUTPUT_FILE_MODE);
  return { fd, path, id: `${st.dev}:${st.ino}` };
}

/** Opens every output of a run, each once; two flags naming the same file (by any path) are refused. */
export function openOutputs(wanted: Array<{ flag: string; path: string | null }>, force: boolean): Map<string, OpenedOutput> {
  const opened = new Map<string, OpenedOutput>();
  try {
    for (const { flag, path } of wanted) {
      if (path === null) continue;
      // Another spelling of a file opened already (created by it, so it exists now).
      let existing: string | null = null;
      try {
        const st = fs.lstatSync(path);
        existing = `${st.dev}:${st.ino}`;
      } catch {
        // Not there yet.
      }
      const twin = [...opened].find(([, other]) => other.id === existing);
      if (twin) throw new OutputPathError(`${flag}: '${path}' is the same file as ${twin[0]} '${twin[1].path}'`);
      const o = openOutputPath(flag, path, force);
      const same = [...opened].find(([, other]) => other.id === o.id);
      if (same) {
        fs.closeSync(o.fd);
        throw new OutputPathError(`${flag}: '${path}' is the same file as ${same[0]} '${same[1].path}'`);
      }
      opened.set(flag, o);
    }
  } catch (e) {
    for (const o of opened.values()) fs.closeSync(o.fd);
    throw e;
  }
  return opened;
}

/** Flags for the files rotation opens: a new file each time, 0600, never through a link. */
export const ROTATED_FILE_FLAGS = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | CLOEXEC;
