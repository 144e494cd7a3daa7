/**
 * The one module every written path goes through (src/output/files.ts):
 * --force replaces a file without touching its other names, an input is
 * never an output, the ready file is checked before and removed only if it
 * is still pktpath's, rotation replaces nothing it was not allowed to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync, closeSync, linkSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  OutputPathError, ReadyFile, checkDistinct, checkLaterOutputs, discardOutput, openOutputPath, openOutputs,
} from '../../src/output/files.js';
import { createSinks, openOutputFile } from '../../src/output/create.js';
import { RotatingFileWriter } from '../../src/output/rotate.js';
import { buildConfig } from '../../src/cli/trace-config.js';
import { withDir as withTempDir } from '../helpers/dirs.js';

const withDir = (fn: (dir: string) => void | Promise<void>) => withTempDir('pktpath-files-', fn);

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof OutputPathError, String(e));
    return e.message;
  }
  return assert.fail('not refused');
}

test('--force makes a new file: another hard link of the old one keeps its bytes, owner and mode', withDir((dir) => {
  const precious = join(dir, 'passwd');
  writeFileSync(precious, 'root:x:0:0\n');
  chmodSync(precious, 0o644);
  const out = join(dir, 'copy');
  linkSync(precious, out);
  const o = openOutputPath('--output-file', out, true);
  closeSync(o.fd);
  assert.equal(readFileSync(precious, 'utf8'), 'root:x:0:0\n');
  assert.equal(statSync(precious).mode & 0o777, 0o644);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  assert.notEqual(statSync(out).ino, statSync(precious).ino);
}));

test('an output that is an input is refused, --force or not, by any path to it', withDir((dir) => {
  const trace = join(dir, 'in.jsonl');
  writeFileSync(trace, '{"v":1}\n');
  const inputs = [{ flag: 'TRACE', path: trace }];
  for (const force of [false, true]) {
    assert.match(refused(() => openOutputPath('--output-file', join(dir, '.', 'in.jsonl'), force, inputs)),
      /--output-file: '.*in\.jsonl' is the same file as TRACE '.*in\.jsonl', which this command reads/);
  }
  linkSync(trace, join(dir, 'other-name'));
  assert.match(refused(() => openOutputs([{ flag: '--output-json-file', path: join(dir, 'other-name') }], true, inputs)),
    /same file as TRACE/);
  // Read through a link, the input is the file the link names.
  symlinkSync(trace, join(dir, 'via-link'));
  assert.match(refused(() => openOutputPath('--junit', trace, true, [{ flag: '--expect', path: join(dir, 'via-link') }])), /same file as --expect/);
  assert.equal(readFileSync(trace, 'utf8'), '{"v":1}\n');
}));

test('with --force, nothing is replaced while another path of the command is still to be refused', withDir((dir) => {
  const a = join(dir, 'a');
  writeFileSync(a, 'keep');
  assert.match(refused(() => checkDistinct([{ flag: '--output-file', path: a }, { flag: '--ready-file', path: join(dir, '.', 'a') }])),
    /--ready-file: '.*a' is the same file as --output-file/);
  assert.equal(readFileSync(a, 'utf8'), 'keep');
}));

test('an empty path, a socket-like special file and a block device are refused', withDir((dir) => {
  assert.match(refused(() => openOutputPath('--out', '', true)), /--out: the path is empty/);
  assert.match(refused(() => openOutputPath('--junit', '  ', false)), /--junit: the path is empty/);
  if (existsSync('/dev/loop0')) assert.match(refused(() => openOutputPath('--output-file', '/dev/loop0', true)), /is not a regular file/);
  // A character device is written to as it is, never unlinked.
  const devnull = openOutputPath('--output-file', '/dev/null', true);
  closeSync(devnull.fd);
  assert.equal(devnull.regular, false);
  assert.ok(statSync('/dev/null').isCharacterDevice());
  void dir;
}));

test('--ready-file: checked before, made 0600 once asked, removed only while it is still the file pktpath made', withDir((dir) => {
  const target = join(dir, 'precious');
  writeFileSync(target, 'keep');
  symlinkSync(target, join(dir, 'link'));
  const none = new Map();
  assert.match(refused(() => ReadyFile.check('--ready-file', join(dir, 'link'), true, none)), /is a symbolic link/);
  assert.match(refused(() => ReadyFile.check('--ready-file', target, false, none)), /exists; pktpath does not overwrite a file unless --force/);
  assert.match(refused(() => ReadyFile.check('--ready-file', join(dir, 'no', 'such', 'ready'), false, none)), /its directory does not exist/);
  assert.match(refused(() => ReadyFile.check('--ready-file', join(target, 'ready'), false, none)), /not a directory/);
  assert.match(refused(() => ReadyFile.check('--ready-file', '/dev/null', true, none)), /not a regular file/);
  assert.equal(readFileSync(target, 'utf8'), 'keep');

  const outputs = openOutputs([{ flag: '--output-file', path: join(dir, 'trace.txt') }], false);
  assert.match(refused(() => ReadyFile.check('--ready-file', join(dir, 'trace.txt'), true, outputs)), /same file as --output-file/);
  assert.ok(existsSync(join(dir, 'trace.txt')));

  const path = join(dir, 'ready');
  const ready = ReadyFile.check('--ready-file', path, false, outputs);
  assert.equal(existsSync(path), false, 'not made before it is asked for');
  ready.create();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  ready.remove();
  assert.equal(existsSync(path), false);

  // Something else at the path by the end: left alone.
  const again = ReadyFile.check('--ready-file', path, false, outputs);
  again.create();
  rmSync(path);
  writeFileSync(path, 'not pktpath\'s');
  again.remove();
  assert.equal(readFileSync(path, 'utf8'), 'not pktpath\'s');
  // An existing one goes at the check with --force, before anything is attached.
  ReadyFile.check('--ready-file', path, true, outputs);
  assert.equal(existsSync(path), false);
  for (const o of outputs.values()) closeSync(o.fd);
}));

test('rotation: rotated names that exist are refused without --force, an input among them always, a device never rotates', withDir((dir) => {
  const path = join(dir, 'trace.txt');
  writeFileSync(`${path}.2`, 'someone else\'s');
  const backups = RotatingFileWriter.backups(path, { maxBackups: 3, compress: false });
  assert.deepEqual(backups, [`${path}.1`, `${path}.2`, `${path}.3`]);
  assert.deepEqual(RotatingFileWriter.backups(path, { maxBackups: 1, compress: true }), [`${path}.1`, `${path}.1.gz`]);
  assert.match(refused(() => checkLaterOutputs('--output-file', backups, false)), /trace\.txt\.2' exists and rotation would replace it/);
  checkLaterOutputs('--output-file', backups, true);
  assert.match(refused(() => checkLaterOutputs('--output-file', backups, true, [{ flag: 'TRACE', path: `${path}.2` }])), /which this command reads/);

  const out = buildConfig({ outputFile: path, outputFileMaxSize: '1000', outputFileMaxBackups: '3' }, []).output;
  assert.match(refused(() => createSinks(out, () => {}, {})), /trace\.txt\.2' exists and rotation would replace it/);
  assert.equal(existsSync(path), false, 'refused before the output was made');
  assert.equal(readFileSync(`${path}.2`, 'utf8'), 'someone else\'s');

  const dev = openOutputPath('--output-file', '/dev/null', false);
  assert.match(refused(() => openOutputFile(dev, { maxSize: 10, maxBackups: 1, maxAgeDays: 0, compress: false })),
    /'\/dev\/null' is not a regular file; only a file pktpath makes is rotated/);
  closeSync(dev.fd);
  assert.ok(statSync('/dev/null').isCharacterDevice());
}));

test('a report that could not be finished is removed, if the path still names it', withDir((dir) => {
  const path = join(dir, 'junit.xml');
  discardOutput(openOutputPath('--junit', path, false));
  assert.equal(existsSync(path), false);
  const o = openOutputPath('--junit', path, false);
  rmSync(path);
  writeFileSync(path, 'another');
  discardOutput(o);
  assert.equal(readFileSync(path, 'utf8'), 'another');
}));

test('output files: made 0600, an existing one or a link refused unless --force, the same file twice refused', withDir((dir) => {
  const f = join(dir, 'trace.txt');
  const a = openOutputPath('--output-file', f, false);
  closeSync(a.fd);
  assert.equal(statSync(f).mode & 0o777, 0o600);
  assert.match(refused(() => openOutputPath('--output-file', f, false)), /exists; pktpath does not overwrite a file unless --force/);
  writeFileSync(f, 'old');
  chmodSync(f, 0o666);
  const forced = openOutputPath('--output-file', f, true);
  closeSync(forced.fd);
  assert.equal(readFileSync(f, 'utf8'), '', '--force empties it');
  assert.equal(statSync(f).mode & 0o777, 0o600, 'and takes the mode others could read away');
  const target = join(dir, 'precious');
  writeFileSync(target, 'keep');
  symlinkSync(target, join(dir, 'link'));
  assert.match(refused(() => openOutputPath('--output-file', join(dir, 'link'), true)), /is a symbolic link/);
  assert.equal(readFileSync(target, 'utf8'), 'keep');
  assert.match(refused(() => openOutputPath('--output-pcap', dir, true)), /is a directory/);
  assert.match(refused(() => openOutputPath('--output-file', join(dir, 'no/such/x'), false)), /its directory does not exist/);
  assert.match(refused(() => openOutputPath('--output-file', '/proc/x', false)), /'\/proc\/x'/);
  assert.match(refused(() => openOutputs([{ flag: '--output-file', path: join(dir, 'two') }, { flag: '--output-pcap', path: join(dir, '.', 'two') }], false)),
    /--output-pcap: '.*two' is the same file as --output-file/);
}));
