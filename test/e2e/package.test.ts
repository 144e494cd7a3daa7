/**
 * pktpath as a node installs it: the tarball of `npm pack`, installed with
 * `npm install -g` into a prefix of its own, run from there with no compiler
 * on PATH (a directory of links to node, ip, ping and what pktpath runs), the
 * repository hidden under an empty tmpfs and the install mounted read-only
 * (a private mount namespace per run): doctor, a trace of a ping between two
 * namespaces made here, record and show.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type SpawnOptions, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import type { JsonRecord } from '../../src/output/json.js';
import { root } from '../helpers/probe-btf.js';
import { waitNoPrograms } from '../helpers/tracer.js';
import { validateJsonLine } from '../helpers/schema.js';

const lab = new Lab('pk31');
const dir = mkdtempSync(join(tmpdir(), 'pk31-'));
const prefix = join(dir, 'prefix');
const pathDir = join(dir, 'path');
const installedBin = join(prefix, 'bin/pktpath');
const installedTree = join(prefix, 'lib/node_modules/pktpath');
const SRC = '203.0.113.31';
const DST = '203.0.113.32';
/** What pktpath runs (trace, record, demo's lab) beside node: no clang, llvm or bpftool among them. */
const RUNTIME_COMMANDS = ['node', 'ip', 'ping', 'tc', 'nft', 'unshare', 'sh'];
/**
 * In a mount namespace of its own: the repository covered, the install read-only, the files named
 * before `--` (shared libraries) emptied, then the command.
 */
const HIDE_AND_RUN = '/usr/bin/mount -t tmpfs pk31 "$1" && /usr/bin/mount --bind "$2" "$2" && ' +
  '/usr/bin/mount -o remount,bind,ro "$2" && shift 2 && ' +
  'while [ "$1" != -- ]; do /usr/bin/mount --bind /dev/null "$1" || exit 99; shift; done; shift; exec "$@"';
let nsA = '';
let nsB = '';

/** The installed pktpath with `args`, from `dir`, with PATH the links only and nothing else of this environment. */
function installed(args: string[], opts: SpawnOptions = {}, missing: string[] = []) {
  return spawn('/usr/bin/unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', HIDE_AND_RUN, 'sh', root, prefix, ...missing, '--',
    installedBin, ...args], { cwd: dir, env: { PATH: pathDir }, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Runs `args` to the end (without the libraries `missing`): exit code and what it wrote. */
function runInstalled(args: string[], missing: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = installed(args, {}, missing);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** Every file under `top` (not into node_modules: the dependencies are npm's), relative to it. */
function filesUnder(top: string, at = top): string[] {
  return readdirSync(at, { withFileTypes: true }).flatMap((e) => {
    const full = join(at, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' && at === top ? [] : [`${relative(top, full)}/`, ...filesUnder(top, full)];
    return [relative(top, full)];
  });
}

const parseLines = (text: string): JsonRecord[] => text.trim().split('\n').map((l) => {
  assert.equal(validateJsonLine(l), null, l);
  return JSON.parse(l) as JsonRecord;
});

before(() => {
  // What `npm test` built is what is packed (`npm pack` alone builds it first: scripts/pack-report.sh).
  execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = readdirSync(dir).find((f) => /^pktpath-.*\.tgz$/.test(f));
  assert.ok(tarball, 'npm pack made no tarball');
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tarball)],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  mkdirSync(pathDir);
  for (const cmd of RUNTIME_COMMANDS) symlinkSync(execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim(), join(pathDir, cmd));
  nsA = lab.netns('a');
  nsB = lab.netns('b');
  lab.veth({ ns: nsA, ifname: 'pk31-a', addrs: [`${SRC}/24`] }, { ns: nsB, ifname: 'pk31-b', addrs: [`${DST}/24`] });
});

after(async () => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

test('the installed tree: compiled JavaScript, built probes and the demo\'s programs, schemas; no source, no test', () => {
  const files = filesUnder(installedTree);
  for (const want of ['bin/pktpath', 'dist/src/bundle/main.cjs', 'dist/src/cli/main.js', 'dist/src/lab/peer.js', 'probes/build/tracepoint.bpf.o',
    'probes/build/tc.bpf.o', 'probes/build/netfilter.bpf.o', 'probes/build/monitor.bpf.o', 'probes/build/policy_drop.bpf.o', 'schema/event.v1.json']) {
    assert.ok(files.includes(want), `${want} is not in the package`);
  }
  assert.deepEqual(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'TypeScript sources in the package');
  assert.deepEqual(files.filter((f) => /(^|\/)(test|bench|src)\/$/.test(f) && !f.startsWith('dist/src/')), [], 'tests, benchmarks or sources in the package');
  assert.deepEqual(files.filter((f) => f.endsWith('.c') || f.endsWith('.h')), [], 'probe sources in the package');
  assert.ok(!existsSync(join(pathDir, 'clang-19')) && !existsSync(join(pathDir, 'bpftool')), 'the PATH holds links to runtime commands only');
});

test('doctor, from the read-only install with no compiler and no repository', async () => {
  const r = await runInstalled(['doctor']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /pktpath will use: skb tracepoints/);
  assert.match(r.stdout + r.stderr, /│ tracepoint +│ loads/);
});

test('a trace of a ping between two namespaces: the echo request arrives in the other', async () => {
  const ready = join(dir, 'ready');
  const child = installed(['--filter-netns', nsB, '--filter-ip', DST, '--output-json', '--ready-file', ready]);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  for (let i = 0; i < 600 && !/pktpath: attached/.test(stderr) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(stderr, /pktpath: attached/);
  assert.equal((await lab.exec(nsA, ['ping', '-c', '2', '-i', '0.2', '-W', '2', DST])).code, 0);
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  const events = parseLines(stdout).filter((e) => (e as { type?: string }).type === undefined);
  const requests = events.filter((e) => e.tuple?.saddr === SRC && e.tuple.daddr === DST && e.tuple.proto === 'icmp');
  assert.ok(requests.some((e) => e.func === 'netif_receive_skb' && e.netns_name === nsB), `no echo request received in ${nsB}:\n${stdout}`);
  assert.ok(events.every((e) => e.netns_name === nsB), 'an event outside the namespace pktpath was narrowed to');
});

test('record around a ping (its header naming the node), then show of the recording, both installed', async () => {
  const out = join(dir, 'ping.jsonl');
  const rec = await runInstalled(['record', '--out', out, '--node', 'pk31-node.example', '--filter-netns', nsB, '--filter-ip', DST, '--',
    'ip', 'netns', 'exec', nsA, 'ping', '-c', '2', '-i', '0.2', '-W', '2', DST]);
  assert.equal(rec.code, 0, rec.stderr);
  const records = parseLines(readFileSync(out, 'utf8'));
  assert.equal((records[0] as { type?: string }).type, 'header');
  assert.equal((records[0] as { node?: string }).node, 'pk31-node.example');
  const events = records.filter((e) => (e as { type?: string }).type === undefined);
  assert.ok(events.some((e) => e.tuple?.saddr === SRC && e.func === 'netif_receive_skb'), 'the recording holds the echo requests');
  const shown = await runInstalled(['show', out, '--output-tuple', '--color', 'never']);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`${SRC.replaceAll('.', '\\.')}->${DST.replaceAll('.', '\\.')}\\(icmp\\)`));
  assert.match(shown.stderr, new RegExp(`pktpath: ${events.length} of ${events.length} events shown`));
});

/** Where the dynamic linker finds `soname` (ldconfig's cache). */
function libraryPath(soname: string): string {
  const line = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).split('\n').find((l) => l.trim().startsWith(`${soname} `));
  assert.ok(line, `${soname} is not installed`);
  return realpathSync(line.split(' => ')[1]!.trim());
}

test('a runtime library missing: one line naming its Debian and Fedora packages', async () => {
  // libbpf: nothing runs (exit 1); libpcap: a filter expression cannot be compiled (exit 1); libnftables: the
  // inventory goes on without nft's chains (exit 0).
  const cases: [string, string[], number, RegExp][] = [
    ['libbpf.so.1', ['doctor'], 1, /install libbpf1 \(Debian, Ubuntu\) or libbpf \(Fedora\)/],
    ['libpcap.so.0.8', ['--filter-netns', nsB, 'icmp'], 1, /install libpcap0\.8 \(Debian, Ubuntu\) or libpcap \(Fedora\)/],
    ['libnftables.so.1', ['datapath', '--filter-netns', nsB], 0, /install libnftables1 \(Debian, Ubuntu\) or nftables \(Fedora\)/],
  ];
  for (const [soname, args, code, packages] of cases) {
    const r = await runInstalled(args, [libraryPath(soname)]);
    assert.equal(r.code, code, `${soname}: ${r.stderr}`);
    const lines = (r.stdout + r.stderr).split('\n').filter((l) => l.includes(soname));
    assert.equal(lines.length, 1, `${soname}: one line, not:\n${r.stdout}${r.stderr}`);
    assert.match(lines[0]!, new RegExp(`cannot load .*${soname.replaceAll('.', '\\.')}.*${packages.source}`));
  }
  const noBpf = await runInstalled(['doctor'], [libraryPath('libbpf.so.1')]);
  assert.equal(noBpf.stderr.trim().split('\n').length, 1, `libbpf: one line, no stack:\n${noBpf.stderr}`);
});
