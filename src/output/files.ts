/**
 * Every file pktpath writes, in every command (--output-file, --output-pcap,
 * --output-json-file, --ready-file, record's --out, normalize's --out,
 * assert's --junit), is opened or checked here before anything is attached
 * or read. The rules: files are created 0600 (packet data is sensitive); a
 * symbolic link at the path is refused (O_NOFOLLOW); an existing file is only
 * replaced when asked (`--force`), and then it is unlinked and made anew, so
 * another name of it (a hard link) and its owner and mode are left alone; a
 * file the command reads is never written, `--force` or not; two outputs
 * are never one file. A device or a FIFO (`/dev/null`) is written to as it
 * is. Every refusal is one line naming the flag, the path and the way out.
 */
import fs from 'node:fs';
import nodePath from 'node:path';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
/** Linux's O_CLOEXEC (Node does not export it): a command pktpath runs (record) inherits no trace file. */
const CLOEXEC = 0o2000000;
export const OUTPUT_FILE_MODE = 0o600;
/** A new file, never through a link, never one that exists. */
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | CLOEXEC;

/** An output path pktpath will not write: the user's to fix (exit 2). */
export class OutputPathError extends Error {
  override name = 'OutputPathError';
}

/** An output file, open; `id` tells two paths naming one file apart. */
export interface OpenedOutput {
  fd: number;
  path: string;
  id: string;
  /** A regular file pktpath made (not a device or a FIFO written as it is). */
  regular: boolean;
}

/** A file the command reads (a trace, an expectation file, a BTF blob, a profile): never an output. */
export interface InputFile {
  flag: string;
  path: string;
}

/** A path to write, as a flag names it; null when the flag was not given. */
export interface OutputRequest {
  flag: string;
  path: string | null;
}

const idOf = (st: fs.Stats) => `${st.dev}:${st.ino}`;

function lstatOrNull(path: string): fs.Stats | null {
  try {
    return fs.lstatSync(path);
  } catch {
    return null;
  }
}

function explain(flag: string, path: string, code: string | undefined): string {
  switch (code) {
    case 'EEXIST': return `${flag}: '${path}' exists; pktpath does not overwrite a file unless --force is given`;
    case 'ELOOP': return `${flag}: '${path}' is a symbolic link; pktpath writes only to the file named, never through a link`;
    case 'EISDIR': return `${flag}: '${path}' is a directory; name a file in it`;
    case 'ENOENT': return `${flag}: '${path}': its directory does not exist`;
    case 'ENOTDIR': return `${flag}: '${path}': a part of the path is not a directory`;
    case 'EACCES': case 'EPERM': return `${flag}: '${path}': no permission to create it there`;
    case 'EROFS': return `${flag}: '${path}' is on a read-only file system`;
    case 'ENAMETOOLONG': return `${flag}: '${path}': the name is too long`;
    default: return `${flag}: cannot create '${path}' (${code ?? 'unknown error'})`;
  }
}

/** The files a command reads, by identity; one that cannot be stat'ed is the reader's to report. */
function identify(inputs: readonly InputFile[]): Array<InputFile & { id: string }> {
  const out: Array<InputFile & { id: string }> = [];
  for (const input of inputs) {
    try {
      out.push({ ...input, id: idOf(fs.statSync(input.path)) });
    } catch {
      // Missing or unreadable: its reader says so.
    }
  }
  return out;
}

/** What may not be written over: the command's inputs, and the outputs opened before this one. */
interface Taken {
  inputs: ReadonlyArray<InputFile & { id: string }>;
  outputs: ReadonlyMap<string, OpenedOutput>;
}

function refuseTaken(flag: string, path: string, id: string, taken: Taken): void {
  const input = taken.inputs.find((i) => i.id === id);
  if (input) {
    throw new OutputPathError(`${flag}: '${path}' is the same file as ${input.flag} '${input.path}', which this command reads; ` +
      'pktpath never writes over its input, --force or not');
  }
  const twin = [...taken.outputs].find(([, o]) => o.id === id);
  if (twin) throw new OutputPathError(`${flag}: '${path}' is the same file as ${twin[0]} '${twin[1].path}'`);
}

/**
 * What is at `path` now, checked for the rules above: null when nothing is
 * (or a regular file was, and `--force` removed it), the Stats of a device
 * or FIFO to write to as it is. Throws OutputPathError.
 */
function clearPath(flag: string, path: string, force: boolean, taken: Taken): fs.Stats | null {
  if (path.trim() === '') throw new OutputPathError(`${flag}: the path is empty`);
  const existing = lstatOrNull(path);
  if (existing === null) return null;
  if (existing.isDirectory()) throw new OutputPathError(explain(flag, path, 'EISDIR'));
  if (existing.isSymbolicLink()) throw new OutputPathError(explain(flag, path, 'ELOOP'));
  refuseTaken(flag, path, idOf(existing), taken);
  // A device or a pipe (/dev/null, a FIFO a reader waits on): written to, nothing to replace.
  if (existing.isCharacterDevice() || existing.isFIFO()) return existing;
  if (!existing.isFile()) throw new OutputPathError(`${flag}: '${path}' is not a regular file, a character device or a FIFO`);
  if (!force) throw new OutputPathError(explain(flag, path, 'EEXIST'));
  try {
    fs.unlinkSync(path);
  } catch (e) {
    throw new OutputPathError(explain(flag, path, (e as NodeJS.ErrnoException).code));
  }
  return null;
}

function openChecked(flag: string, path: string, force: boolean, taken: Taken): OpenedOutput {
  const special = clearPath(flag, path, force, taken);
  let fd: number;
  try {
    // O_EXCL: whatever appeared at the path since it was checked is not written over.
    fd = fs.openSync(path, special ? O_WRONLY | O_NOFOLLOW | CLOEXEC : CREATE_FLAGS, OUTPUT_FILE_MODE);
  } catch (e) {
    throw new OutputPathError(explain(flag, path, (e as NodeJS.ErrnoException).code));
  }
  const st = fs.fstatSync(fd);
  if (special ? idOf(st) !== idOf(special) : !st.isFile()) {
    fs.closeSync(fd);
    throw new OutputPathError(`${flag}: '${path}' changed while pktpath opened it`);
  }
  // A umask cannot widen 0600, but may narrow it to a mode the user cannot read back.
  if (!special && (st.mode & 0o777) !== OUTPUT_FILE_MODE) fs.fchmodSync(fd, OUTPUT_FILE_MODE);
  return { fd, path, id: idOf(st), regular: !special };
}

/** Opens `path` for writing, as the rules above say; throws OutputPathError. */
export function openOutputPath(flag: string, path: string, force: boolean, inputs: readonly InputFile[] = []): OpenedOutput {
  return openChecked(flag, path, force, { inputs: identify(inputs), outputs: new Map() });
}

/**
 * Before anything is replaced: no two of these paths name one file that
 * exists, and none names an input. (Paths that do not exist yet are told
 * apart once made.)
 */
export function checkDistinct(wanted: readonly OutputRequest[], inputs: readonly InputFile[] = []): void {
  const seen = new Map<string, OpenedOutput>();
  const taken: Taken = { inputs: identify(inputs), outputs: seen };
  for (const { flag, path } of wanted) {
    const st = path === null ? null : lstatOrNull(path);
    if (st === null || st.isSymbolicLink()) continue;
    refuseTaken(flag, path!, idOf(st), taken);
    seen.set(flag, { fd: -1, path: path!, id: idOf(st), regular: st.isFile() });
  }
}

/**
 * Opens every output of a command, each once, before it reads or attaches
 * anything; two flags naming one file (by any path), or an output naming an
 * input, are refused. On a refusal nothing stays open.
 */
export function openOutputs(wanted: readonly OutputRequest[], force: boolean, inputs: readonly InputFile[] = []): Map<string, OpenedOutput> {
  checkDistinct(wanted, inputs);
  const opened = new Map<string, OpenedOutput>();
  const taken: Taken = { inputs: identify(inputs), outputs: opened };
  try {
    for (const { flag, path } of wanted) {
      if (path !== null) opened.set(flag, openChecked(flag, path, force, taken));
    }
  } catch (e) {
    // A refusal leaves nothing behind: the files made for it go again.
    for (const o of opened.values()) discardOutput(o);
    throw e;
  }
  return opened;
}

/**
 * Closes an output the command could not finish (its input was bad) and
 * removes it if pktpath made it and the path still names it: a failed run
 * leaves no half-written report behind, and nothing else is touched.
 */
export function discardOutput(o: OpenedOutput): void {
  try {
    // Compared while the fd is open: the file's inode cannot have been reused by another.
    const now = o.regular ? lstatOrNull(o.path) : null;
    if (now !== null && now.isFile() && idOf(now) === o.id) fs.rmSync(o.path, { force: true });
  } finally {
    fs.closeSync(o.fd);
  }
}

/**
 * Paths a command will write beside an output later (rotated files): checked
 * now as outputs are, but left in place; with `--force` they may be replaced
 * then. An input among them is refused, `--force` or not.
 */
export function checkLaterOutputs(flag: string, paths: readonly string[], force: boolean, inputs: readonly InputFile[] = []): void {
  const taken: Taken = { inputs: identify(inputs), outputs: new Map() };
  for (const path of paths) {
    const existing = lstatOrNull(path);
    if (existing === null) continue;
    refuseTaken(flag, path, idOf(existing), taken);
    if (existing.isDirectory()) throw new OutputPathError(explain(flag, path, 'EISDIR'));
    if (!force) throw new OutputPathError(`${flag}: '${path}' exists and rotation would replace it; pktpath does not unless --force is given`);
  }
}

/**
 * `--ready-file`: a file whose appearance says "attached". Its path is checked
 * with the other outputs, before anything is attached (a missing directory,
 * a link, an existing file without `--force`, an input or another output are
 * refused then, not after attaching); it is created, empty and 0600, once the
 * trace is attached, and on exit removed only if the path still names the
 * file pktpath made.
 */
export class ReadyFile {
  /** Held open while the file is pktpath's: its inode cannot be freed and reused by another file meanwhile. */
  private made: OpenedOutput | null = null;

  private constructor(readonly flag: string, readonly path: string) {}

  /** Checks `path` against the rules and the outputs already opened; an existing file goes now with `--force`. */
  static check(flag: string, path: string, force: boolean, outputs: ReadonlyMap<string, OpenedOutput>,
    inputs: readonly InputFile[] = []): ReadyFile {
    const special = clearPath(flag, path, force, { inputs: identify(inputs), outputs });
    if (special) throw new OutputPathError(`${flag}: '${path}' is not a regular file; the ready file is made and removed by pktpath`);
    const dir = nodePath.dirname(path);
    try {
      if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' });
      fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    } catch (e) {
      throw new OutputPathError(explain(flag, path, (e as NodeJS.ErrnoException).code));
    }
    return new ReadyFile(flag, path);
  }

  /** Makes the file (never through a link, never over one that appeared meanwhile); throws OutputPathError. */
  create(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.path, CREATE_FLAGS, OUTPUT_FILE_MODE);
    } catch (e) {
      throw new OutputPathError(explain(this.flag, this.path, (e as NodeJS.ErrnoException).code));
    }
    this.made = { fd, path: this.path, id: idOf(fs.fstatSync(fd)), regular: true };
  }

  /** Removes the file pktpath made, if the path still names it; anything else there is left alone. */
  remove(): void {
    if (this.made !== null) discardOutput(this.made);
    this.made = null;
  }
}

/** Flags for the files rotation opens: a new file each time, 0600, never through a link. */
export const ROTATED_FILE_FLAGS = CREATE_FLAGS;
