/**
 * Every path a command writes, as a user meets it: `show`, `normalize --out`,
 * `assert --junit`, `--ready-file`, rotation and `record`. An output that is an
 * input, a link, an existing file without --force, an empty path or a missing
 * directory is one line and exit 2 before anything is read, written or
 * attached, and leaves every file as it was; the ready file is removed only
 * while it is pktpath's; `record`'s command dies with pktpath.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from '../helpers/probe-btf.js';
import { PKTPATH, pktpathPrivately, runPktpath, waitNoPrograms } from '../helpers/tracer.js';

const dir = mkdtempSync(join(tmpdir(), 'pktpath-paths-'));
const file = (name: string) => join(dir, name);
const TRACE = file('trace.jsonl');
const EXPECT = file('expect.yaml');
const PRECIOUS = file('precious');
const EXPECT_TEXT = 'expect:\n  - name: tcp\n    match:\n      proto: tcp\n';

before(() => {
  copyFileSync(join(root, 'fixtures/golden/basic.jsonl'), TRACE);
  writeFileSync(EXPECT, EXPECT_TEXT);
  writeFileSync(PRECIOUS, 'root:x:0:0\n');
  symlinkSync(PRECIOUS, file('link'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The files no refusal may change, with their bytes now. */
function snapshot(): Map<string, string> {
  return new Map([TRACE, EXPECT, PRECIOUS].map((f) => [f, readFileSync(f, 'utf8')]));
}

/** One line on stderr matching `pattern`, exit 2, nothing on stdout, and every file as it was. */
function refused(args: string[], pattern: RegExp, prefix: string[] = []): void {
  const before = snapshot();
  const r = runPktpath(args, { prefix });
  const lines = r.stderr.split('\n').filter(Boolean);
  const what = `pktpath ${args.join(' ')}`;
  assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
  assert.equal(lines.length, 1, `${what}: one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^pktpath: /, what);
  assert.match(lines[0]!, pattern, what);
  assert.equal(r.stdout, '', `${what}: printed before refusing`);
  assert.doesNotMatch(r.stderr, /attached/, `${what}: got as far as tracing`);
  for (const [f, text] of before) assert.equal(readFileSync(f, 'utf8'), text, `${what}: changed ${f}`);
}

const SAME_AS_INPUT = /is the same file as (TRACE|--expect) .* which this command reads/;

test('show: an output that is the trace it reads is refused, --force or not', () => {
  for (const flag of ['--output-file', '--output-json-file', '--output-pcap']) {
    for (const force of [[], ['--force']]) refused(['show', TRACE, flag, TRACE, ...force], SAME_AS_INPUT);
  }
  refused(['show', TRACE, '--output-file', join(dir, '.', 'trace.jsonl'), '--force'], SAME_AS_INPUT);
  refused(['show', TRACE, '--output-file', file('link'), '--force'], /is a symbolic link/);
  refused(['show', TRACE, '--output-file', PRECIOUS], /exists; pktpath does not overwrite a file unless --force/);
  refused(['show', TRACE, '--output-file', ''], /--output-file: the path is empty/);
});

test('normalize --out: never the trace or the expectation file, never through a link, 0600, refused before anything is read', () => {
  refused(['normalize', TRACE, '--out', TRACE, '--force'], SAME_AS_INPUT);
  refused(['normalize', TRACE, '--expect', EXPECT, '--out', EXPECT, '--force'], SAME_AS_INPUT);
  refused(['normalize', TRACE, '--out', file('link')], /--out: '.*link' is a symbolic link/);
  refused(['normalize', TRACE, '--out', PRECIOUS], /--out: '.*precious' exists; pktpath does not overwrite a file unless --force/);
  refused(['normalize', TRACE, '--out', ''], /--out: the path is empty/);
  refused(['normalize', TRACE, '--out', file('no/such/dir/out')], /--out: '.*out': its directory does not exist/);
  const out = file('norm.jsonl');
  const r = runPktpath(['normalize', TRACE, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  refused(['normalize', TRACE, '--out', out], /exists/);
  assert.equal(runPktpath(['normalize', TRACE, '--out', out, '--force']).code, 0);
  // A trace that cannot be read leaves no empty report behind.
  const bad = file('bad.jsonl');
  writeFileSync(bad, 'not json\n');
  const failed = runPktpath(['normalize', bad, '--out', file('never.jsonl')]);
  assert.equal(failed.code, 2, failed.stderr);
  assert.equal(existsSync(file('never.jsonl')), false);
});

test('assert --junit: refused (exit 2) before any result is printed; never an input; 0600', () => {
  refused(['assert', TRACE, '--expect', EXPECT, '--junit', EXPECT, '--force'], SAME_AS_INPUT);
  refused(['assert', TRACE, '--expect', EXPECT, '--junit', TRACE, '--force'], SAME_AS_INPUT);
  refused(['assert', TRACE, '--expect', EXPECT, '--junit', file('link'), '--force'], /is a symbolic link/);
  refused(['assert', TRACE, '--expect', EXPECT, '--junit', PRECIOUS], /exists; pktpath does not overwrite/);
  refused(['assert', TRACE, '--expect', EXPECT, '--junit', ''], /--junit: the path is empty/);
  refused(['assert', TRACE, '--expect', ''], /--expect FILE is required/);
  const junit = file('junit.xml');
  const r = runPktpath(['assert', TRACE, '--expect', EXPECT, '--junit', junit]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(junit).mode & 0o777, 0o600);
  assert.match(readFileSync(junit, 'utf8'), /<testsuites/);
});

/** A trace of pktpath's own empty namespace, refused or not before attaching. */
const trace = (args: string[]) => pktpathPrivately(args);

test('--ready-file: checked with the other outputs before anything is attached', async () => {
  const prefix = ['unshare', '--net', '--'];
  refused(['--ready-file', file('link')], /--ready-file: '.*link' is a symbolic link/, prefix);
  refused(['--ready-file', PRECIOUS], /--ready-file: '.*precious' exists/, prefix);
  refused(['--ready-file', file('no/such/ready')], /--ready-file: '.*ready': its directory does not exist/, prefix);
  refused(['--ready-file', '/sys/kernel/btf/vmlinux', '--kernel-btf', '/sys/kernel/btf/vmlinux', '--force'], /is the same file as --kernel-btf/, prefix);
  const out = file('same.txt');
  refused(['--output-file', out, '--ready-file', join(dir, '.', 'same.txt')], /--ready-file: '.*same\.txt' is the same file as --output-file/, prefix);
  assert.equal(existsSync(out), false, 'the output made before the refusal goes again');
  refused(['record', '--out', out, '--ready-file', out, '--force', '--', 'true'], /--ready-file: .* is the same file as --out/, prefix);
  assert.deepEqual(await waitNoPrograms(), []);
});

test('--ready-file: on exit, removed only while the path still names the file pktpath made', async () => {
  const ready = file('ready');
  const [cmd, args] = trace(['--ready-file', ready, '--output-file', '/dev/null']);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const until = Date.now() + 30_000;
  while (!existsSync(ready) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(ready), stderr);
  assert.equal(statSync(ready).mode & 0o777, 0o600);
  rmSync(ready);
  writeFileSync(ready, 'a file of someone else');
  child.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  assert.equal(readFileSync(ready, 'utf8'), 'a file of someone else');
  assert.deepEqual(await waitNoPrograms(), []);
});

test('rotation: rotated names that exist are not replaced without --force', () => {
  const out = file('rot.txt');
  writeFileSync(`${out}.2`, 'an older trace of someone else');
  refused(['--output-file', out, '--output-file-max-size', '1000'], /rot\.txt\.2' exists and rotation would replace it/, ['unshare', '--net', '--']);
  assert.equal(readFileSync(`${out}.2`, 'utf8'), 'an older trace of someone else');
  assert.equal(existsSync(out), false);
  refused(['--output-file', '/dev/null', '--output-file-max-size', '1000'], /not a regular file; only a file pktpath makes is rotated/, ['unshare', '--net', '--']);
});

test('record: the command dies with pktpath, even when pktpath is killed', async () => {
  const pidFile = file('cmd.pid');
  const out = file('killed.jsonl');
  const [cmd, args] = trace(['record', '--out', out, '--', 'sh', '-c', `echo $$ > ${pidFile}; exec sleep 60`]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const until = Date.now() + 30_000;
  while (!existsSync(pidFile) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(pid > 0);
  // unshare execs pktpath: the child is pktpath itself.
  child.kill('SIGKILL');
  await exited;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(), false, `the command (pid ${pid}) outlived pktpath`);
  assert.deepEqual(await waitNoPrograms(), []);
});

test('record: a command that cannot be run is told before anything is attached, with the shell\'s status', () => {
  const r = runPktpath(['record', '--out', file('never.jsonl'), '--', 'no-such-command-pktpath'], { prefix: ['unshare', '--net', '--'] });
  assert.equal(r.code, 127, r.stderr);
  assert.match(r.stderr, /no-such-command-pktpath: command not found/);
  assert.doesNotMatch(r.stderr, /attached/);
  void PKTPATH;
});
