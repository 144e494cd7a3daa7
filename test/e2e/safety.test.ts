/**
 * Boringly safe as root: bad input of every kind is one line and exit 2 with
 * nothing attached; output files are checked before anything is attached; two
 * sessions coexist at netfilter; a signal while attaching stops it; nothing
 * of pktpath's (program, link, map) outlives it, however it ends.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linkInfos, mapInfos, programs } from '../../src/bpf/loaded.js';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { PKTPATH, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab(`ppsf${process.pid % 10000}`);
let A = '';
let B = '';
const dir = mkdtempSync(join(tmpdir(), 'pktpath-safety-'));
/** The highest map id before the tests: maps above it named like pktpath's are its own. */
let mapsBefore = 0;
const OUR_MAPS = /^(events|lost|stacks|tracked_skbs|tracked_heads|track_stats|\w{0,8}\.rodata)$/;

before(() => {
  ({ a: A, b: B } = twoHosts(lab));
  mapsBefore = Math.max(0, ...mapInfos().map((m) => m.id));
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** What of pktpath's is still in the kernel: programs, their links, its maps. */
function leftovers(): string[] {
  const progs = programs().filter((p) => p.name.startsWith('pktpath_'));
  const ids = new Set(progs.map((p) => p.id));
  return [
    ...progs.map((p) => `program ${p.name}#${p.id}`),
    ...linkInfos().filter((l) => ids.has(l.progId)).map((l) => `link #${l.id}`),
    ...mapInfos().filter((m) => m.id > mapsBefore && OUR_MAPS.test(m.name)).map((m) => `map ${m.name}#${m.id}`),
  ];
}

async function nothingLeft(): Promise<void> {
  assert.deepEqual(await waitNoPrograms(), []);
  for (let i = 0; i < 50 && leftovers().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(leftovers(), []);
}

function pktpath(args: string[], prefix: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const cmd = [...prefix, process.execPath, PKTPATH, ...args];
  return new Promise((resolve) => {
    execFile(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const inB = () => ['ip', 'netns', 'exec', B];
const longExpression = Array.from({ length: 5000 }, (_, i) => `port ${i + 1}`).join(' or ');
const bigFilter = Array.from({ length: 150 }, (_, i) => (i % 2 ? `host 192.0.2.${i % 250 + 1}` : `port ${i + 1}`)).join(' or ');

/** Each: the arguments, and what the one line must say. */
const BAD: Array<[string[], RegExp]> = [
  // addresses
  [['--filter-dst-ip', '300.1.1.1'], /--filter-dst-ip: '300\.1\.1\.1' is not an IPv4 or IPv6 address/],
  [['--filter-src-ip', '1.2.3'], /--filter-src-ip: '1\.2\.3' is not/],
  [['--filter-ip', 'abc'], /--filter-ip: 'abc' is not/],
  [['--filter-ip', '192.0.2.1/24'], /--filter-ip: '192\.0\.2\.1\/24' is not/],
  [['--filter-dst-ip', '2001:db8::g'], /--filter-dst-ip: '2001:db8::g' is not/],
  [['--filter-src-ip', ''], /--filter-src-ip: '' is not/],
  [['--filter-src-ip', '192.0.2.1', '--filter-dst-ip', '2001:db8::1'], /mix IPv4 and IPv6/],
  // ports
  [['--filter-dst-port', '70000'], /--filter-dst-port: '70000' is not a port/],
  [['--filter-src-port', '-1'], /--filter-src-port: '-1' is not a port/],
  [['--filter-port', 'http'], /--filter-port: 'http' is not a port/],
  [['--filter-port', '1.5'], /--filter-port: '1\.5' is not a port/],
  [['--filter-port', '80', '--filter-proto', 'icmp'], /port filters need a protocol with ports/],
  // protocols
  [['--filter-proto', 'bogus'], /--filter-proto: 'bogus' is not a protocol/],
  [['--filter-proto', '256'], /--filter-proto: '256' is not a protocol/],
  [['--filter-proto', '-3'], /--filter-proto: '-3' is not a protocol/],
  // marks
  [['--filter-mark', 'x'], /--filter-mark: 'x' is not VALUE\[\/MASK\]/],
  [['--filter-mark', '0x100000000'], /--filter-mark: '0x100000000' is not/],
  [['--filter-mark', '1/2/3'], /--filter-mark: '1\/2\/3' is not/],
  [['--filter-mark', '0x1/0x'], /--filter-mark: '0x1\/0x' is not/],
  // namespaces
  [['--filter-netns', '/etc/passwd'], /--filter-netns: '\/etc\/passwd' is not a network namespace/],
  [['--filter-netns', '/proc/self/ns/pid'], /is not a network namespace \(it is a pid namespace\)/],
  [['--filter-netns', '/proc'], /--filter-netns: '\/proc' is not a network namespace/],
  [['--filter-netns', 'no-such-namespace'], /no network namespace 'no-such-namespace'/],
  [['--filter-netns', 'inode:1'], /no network namespace with inode 1/],
  [['--filter-netns', ' '], /--filter-netns: empty/],
  // interfaces
  [['--filter-ifname', 'a-name-longer-than-15'], /is not an interface name/],
  [['--filter-ifname', 'a/b'], /is not an interface name/],
  [['--filter-ifname', 'nosuchdev0'], /no device 'nosuchdev0'/],
  // regexes
  [['--filter-func', '('], /--filter-func: '\(' is not a regular expression/],
  [['--filter-func', '[a-'], /is not a regular expression/],
  [['--filter-func', '*x'], /is not a regular expression/],
  [['--filter-func', 'no_such_point_anywhere'], /--filter-func: 'no_such_point_anywhere' finds no observation point/],
  [['--filter-func', '^(a+)+$'], /finds no observation point/],
  // pcap expressions
  [['tcp and'], /filter 'tcp and': /],
  [['port 99999'], /filter 'port 99999': /],
  [['ip[', '0]'], /filter/],
  [['tcp', 'or', 'or'], /filter/],
  [['ip and ip6'], /rejects all packets/],
  [[longExpression], /5000 terms; pktpath compiles at most 200/],
  [[bigFilter], /eBPF instructions; the probes have room for 4096/],
  // files
  [['--output-file', '/proc/x'], /--output-file: .*'\/proc\/x'/],
  [['--output-file', dir], /--output-file: '.*' is a directory/],
  [['--output-file', join(dir, 'missing', 'f')], /its directory does not exist/],
  [['--output-pcap', dir], /--output-pcap: '.*' is a directory/],
  [['--output-file', join(dir, 'existing')], /exists; pktpath does not overwrite a file unless --force/],
  [['--output-file', join(dir, 'link'), '--force'], /is a symbolic link/],
  [['--output-file', join(dir, 'same'), '--output-pcap', `${dir}/./same`], /--output-pcap: .* is the same file as --output-file/],
  [['--output-file', ' '], /--output-file: the path is empty/],
  [['--output-pcap', ''], /--output-pcap: needs a file name/],
  // sizes and counts
  [['--ring-size', '1K'], /--ring-size: 1K is out of range/],
  [['--ring-size', '2G'], /--ring-size: 2G is out of range/],
  [['--ring-size', 'big'], /--ring-size: 'big' is not a size/],
  [['--output-file', 'f', '--output-file-max-size', '100b'], /below the smallest size, 4K/],
  [['--output-file', 'f', '--output-file-max-size', 'x'], /--output-file-max-size: 'x' is not a size/],
  [['--output-file-max-size', '1M'], /rotation needs --output-file/],
  [['--output-file-max-backups', '2'], /--output-file-max-backups: rotation needs --output-file/],
  [['--pcap-snaplen', '0'], /--pcap-snaplen: '0' is out of range/],
  [['--pcap-snaplen', '70000'], /--pcap-snaplen: '70000' is out of range/],
  [['--duration', 'abc'], /--duration: 'abc' is not/],
  [['--duration', '-1'], /--duration: '-1' is not/],
  [['--output-limit-lines', 'x'], /--output-limit-lines: 'x' is not/],
  // choices and combinations
  [['--timestamp', 'sometimes'], /--timestamp: 'sometimes' is not one of/],
  [['--color', 'maybe'], /--color: 'maybe' is not one of/],
  [['--attach', 'bogus'], /--attach: 'bogus' is not one of/],
  [['--attach', ','], /--attach: name at least one of/],
  [['--group-by', 'flow'], /--group-by: 'flow' is not one of/],
  [['--group-by', 'skb', '--output-json'], /--group-by: prints text blocks/],
  [['--no-such-flag'], /unknown option '--no-such-flag'/],
  // subcommands
  [['doctor', 'extra'], /too many arguments for 'doctor'/],
  [['list', '--bogus'], /unknown option '--bogus'/],
  [['datapath', '--bogus'], /unknown option '--bogus'/],
  [['datapath', '--filter-netns', '/etc/passwd'], /is not a network namespace/],
  [['cleanup', 'extra'], /too many arguments for 'cleanup'/],
  [['demo', 'extra'], /too many arguments for 'demo'/],
  [['record', '--', 'true'], /record: --out FILE is required/],
  [['normalize'], /missing required argument/],
  [['diff', 'only-one'], /missing required argument/],
  [['normalize', join(dir, 'no-such-trace.jsonl')], /no-such-trace\.jsonl/],
];

test(`bad input (${BAD.length} kinds): one line on stderr, exit 2, nothing attached`, async () => {
  assert.ok(BAD.length >= 60);
  writeFileSync(join(dir, 'existing'), 'a trace of yesterday');
  symlinkSync(join(dir, 'existing'), join(dir, 'link'));
  const problems: string[] = [];
  // A few at a time: each is a process of its own.
  for (let i = 0; i < BAD.length; i += 6) {
    const runs = await Promise.all(BAD.slice(i, i + 6).map(async ([args, pattern]) => ({ args, pattern, r: await pktpath(args, inB()) })));
    for (const { args, pattern, r } of runs) {
      const lines = r.stderr.trim().split('\n');
      const what = `pktpath ${args.join(' ').slice(0, 80)}`;
      if (r.code !== 2) problems.push(`${what}: exit ${r.code}, not 2: ${r.stderr.trim()}`);
      else if (lines.length !== 1) problems.push(`${what}: ${lines.length} lines:\n${r.stderr}`);
      else if (!/^pktpath: /.test(lines[0]!) || !pattern.test(lines[0]!)) problems.push(`${what}: ${lines[0]} (wanted ${pattern})`);
      else if (/attached/.test(r.stderr) || r.stdout !== '') problems.push(`${what}: got as far as tracing`);
    }
  }
  assert.deepEqual(problems, []);
  assert.equal(statSync(join(dir, 'existing')).size, 'a trace of yesterday'.length, 'the existing file is untouched');
  await nothingLeft();
});

test('output files are made 0600; --force replaces one', async () => {
  const file = join(dir, 'new.txt');
  const pcap = join(dir, 'new.pcapng');
  let tracer = await startTracer(['--filter-dst-ip', '192.0.2.2', '--output-file', file, '--output-pcap', pcap], 30_000, inB());
  await tracer.stop();
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(pcap).mode & 0o777, 0o600);
  tracer = await startTracer(['--filter-dst-ip', '192.0.2.2', '--output-file', file, '--force'], 30_000, inB());
  const { code } = await tracer.stop();
  assert.equal(code, 0);
});

test('two sessions at once: each gets netfilter hooks, and sees exactly its own packets at each family', async () => {
  const v4 = await startTracer(['--filter-dst-ip', '192.0.2.2', '--filter-proto', 'icmp'], 30_000, inB());
  const v6 = await startTracer(['--filter-dst-ip', '2001:db8::2', '--filter-proto', 'icmp6'], 30_000, inB());
  lab.execSync(A, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '192.0.2.2']);
  lab.execSync(A, ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '1', '2001:db8::2']);
  const [a, b] = await Promise.all([v4.stop(), v6.stop()]);
  assert.match(b.stderr, /priorities -199→-198: others held them/);
  assert.doesNotMatch(b.stderr, /not observed/);
  const nf = (events: typeof a.events, family: string) => events.filter((e) => e.func.startsWith(`nf:${family}:`));
  assert.ok(nf(a.events, 'ipv4').length >= 4, 'the first session sees IPv4 at netfilter');
  assert.ok(nf(b.events, 'ipv6').length >= 4, 'the second session sees IPv6 at netfilter');
  assert.ok(a.events.every((e) => e.tuple?.daddr === '192.0.2.2'), 'only its own packets');
  assert.ok(b.events.every((e) => e.tuple?.daddr === '2001:db8::2'), 'only its own packets');
  await nothingLeft();
});

test('a signal while attaching stops at once; SIGKILL at any moment of start-up leaves nothing', async () => {
  const child = spawn('ip', [...inB().slice(1), process.execPath, PKTPATH, '--filter-dst-ip', '192.0.2.2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  // The first tracepoint is being attached: interrupt there.
  for (let i = 0; i < 300 && programs().every((p) => !p.name.startsWith('pktpath_')); i++) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(code, 0, err);
  assert.match(err, /stopped while attaching \(signal\): \d+ links made, all released/);
  await nothingLeft();

  for (const delayMs of [150, 400, 700, 1000]) {
    const k = spawn('ip', [...inB().slice(1), process.execPath, PKTPATH, '--filter-dst-ip', '192.0.2.2', '--output-ct'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, delayMs));
    k.kill('SIGKILL');
    await new Promise((r) => k.on('exit', r));
    await nothingLeft();
  }
});

test('rotation under a flood loses and repeats no record across its files', async () => {
  const file = join(dir, 'rotated.jsonl');
  const tracer = await startTracer(['--filter-dst-ip', '192.0.2.2', '--filter-proto', 'icmp', '--output-file', file,
    '--output-file-max-size', '64K', '--output-file-max-backups', '1000'], 30_000, inB());
  lab.execSync(A, ['ping', '-f', '-c', '3000', '-W', '1', '192.0.2.2']);
  const { code, stderr } = await tracer.stop();
  assert.equal(code, 0, stderr);
  const summary = /pktpath: (\d+) events, (\d+) lost/.exec(stderr);
  assert.ok(summary, stderr);
  const names = readdirSync(dir).filter((n) => n.startsWith('rotated.jsonl'));
  assert.ok(names.length > 5, `only ${names.length} files: the flood should rotate many times`);
  let events = 0;
  let lost = 0;
  const seen = new Set<string>();
  let repeated = 0;
  for (const name of names) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      const r = JSON.parse(line) as { type?: string; count?: number; time: string; skb: string; func: string };
      if (r.type === 'lost') {
        lost += r.count!;
        continue;
      }
      if (r.type !== undefined) continue; // A namespace's settings: no event.
      events++;
      const key = `${r.time} ${r.skb} ${r.func}`;
      if (seen.has(key)) repeated++;
      seen.add(key);
    }
  }
  assert.equal(events, Number(summary[1]), 'every event the session counted is in exactly one file');
  assert.equal(lost, Number(summary[2]));
  assert.equal(repeated, 0);
});
