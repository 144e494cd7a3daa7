/**
 * The CI workflow on real packets: `pktpath record` around a ping + UDP + TCP
 * scenario between two namespaces, `normalize`, `diff` and `assert` on what
 * it wrote. Runs of one scenario must compare equal; a changed datapath (an
 * nft drop, a DNAT, a route removed) must show, in words.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Lab, run, twoHosts } from '../../src/lab/lab.js';
import { root } from '../helpers/probe-btf.js';
import { PKTPATH, pktpathPrivately, waitNoPrograms } from '../helpers/tracer.js';
import { validateJsonLine } from '../helpers/schema.js';

const PEER = join(root, 'dist/src/lab/peer.js');
const GOLDEN = join(root, 'fixtures/golden/regress/scenario.norm.jsonl');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

// A fixed tag: namespace names are part of the normalised form.
const lab = new Lab('pprg');
let A = '';
let B = '';
const dir = mkdtempSync(join(tmpdir(), 'pktpath-regress-e2e-'));
const file = (name: string) => join(dir, name);

before(() => {
  ({ a: A, b: B } = twoHosts(lab));
});
after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** pktpath in a network namespace of its own: it observes the test's named namespaces, not the machine's interfaces. */
const pktpath = (args: string[], timeoutMs = 60_000) =>
  run(...pktpathPrivately(args), timeoutMs);

/** Waits for a lab server to say it listens. */
function ready(ns: string, args: string[]) {
  const child = lab.spawn(ns, [process.execPath, PEER, ...args]);
  return new Promise<typeof child>((resolve) => child.stdout!.once('data', () => resolve(child)));
}

/** The scenario's traffic, as the command `record` runs: ping, a UDP datagram, a TCP echo; each step whatever the last did. */
const traffic = (udpPort = 5353) => ['sh', '-c', [
  `ip netns exec ${A} ping -c 1 -W 1 192.0.2.2 >/dev/null`,
  `ip netns exec ${A} ${process.execPath} ${PEER} udp-send 192.0.2.2 ${udpPort} hello`,
  `ip netns exec ${A} ${process.execPath} ${PEER} tcp-connect 192.0.2.2 8080 hello`,
].join('; ')];

/** Records one run of the scenario; servers in B are started for it and stopped after. */
async function recordScenario(out: string, opts: { udpServe?: number } = {}): Promise<{ code: number; stderr: string }> {
  const servers = await Promise.all([ready(B, ['udp-serve', String(opts.udpServe ?? 5353)]), ready(B, ['tcp-serve', '8080'])]);
  try {
    const r = await pktpath(['record', '--out', out, '--filter-ip', '192.0.2.2', '--', ...traffic()]);
    return { code: r.code, stderr: r.stderr };
  } finally {
    for (const s of servers) s.kill('SIGKILL');
  }
}

const baseline = file('baseline.jsonl');

test('record: a header that explains the trace, then the events; every line valid; the command\'s status', async () => {
  const r = await recordScenario(baseline);
  assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(baseline, 'utf8').trim().split('\n');
  for (const line of lines) assert.equal(validateJsonLine(line), null, line);
  const header = JSON.parse(lines[0]!) as { type: string; command: string[]; points: string[]; namespaces: Array<{ name: string }> };
  assert.equal(header.type, 'header');
  assert.deepEqual(header.command, traffic());
  assert.ok(header.points.includes('nf:ipv4:local_in') && header.points.includes('tc:ingress'));
  assert.ok(header.namespaces.some((n) => n.name === A) && header.namespaces.some((n) => n.name === B));
  assert.ok(lines.length > 50, `only ${lines.length} lines`);

  const exit3 = await pktpath(['record', '--out', file('exit3.jsonl'), '--filter-ip', '192.0.2.2', '--', 'sh', '-c', 'exit 3']);
  assert.equal(exit3.code, 3, exit3.stderr);
  const killed = await pktpath(['record', '--out', file('killed.jsonl'), '--filter-ip', '192.0.2.2', '--', 'sh', '-c', 'kill -TERM $$']);
  assert.equal(killed.code, 128 + 15, killed.stderr);
  // The trace ending first (--duration) is no whole trace of the command: 1.
  const short = await pktpath(['record', '--out', file('short.jsonl'), '--filter-ip', '192.0.2.2', '--duration', '1', '--', 'sleep', '30']);
  assert.equal(short.code, 1, short.stderr);
  assert.match(short.stderr, /the trace stopped \(duration\) before sleep exited/);
  const missing = await pktpath(['record', '--out', file('missing.jsonl'), '--', 'no-such-command-pktpath']);
  assert.equal(missing.code, 127, missing.stderr);
  assert.match(missing.stderr, /no-such-command-pktpath: command not found/);
  // Started as a user starts it (the script, by its first line): Node starts without NODE_EXTRA_CA_CERTS
  // (no warning about the missing file), the command gets it back.
  const ca = '/nonexistent/pktpath-test-ca.pem';
  const env = await run('unshare', ['--net', '--', 'env', `NODE_EXTRA_CA_CERTS=${ca}`, PKTPATH, 'record', '--out', file('env.jsonl'),
    '--filter-ip', '192.0.2.2', '--', 'sh', '-c', `test "$NODE_EXTRA_CA_CERTS" = ${ca} && test -z "\${PKTPATH_NODE_EXTRA_CA_CERTS+set}"`]);
  assert.equal(env.code, 0, env.stderr);
  assert.doesNotMatch(env.stderr, /extra certs/i);
  // Released by the kernel once the process is gone (asynchronously).
  assert.deepEqual(await waitNoPrograms(), []);
});

test('runs of one scenario normalise to identical output, and to the golden one', async () => {
  const runs = [baseline];
  for (let i = 1; i <= 3; i++) {
    const out = file(`run${i}.jsonl`);
    const r = await recordScenario(out);
    assert.equal(r.code, 0, r.stderr);
    runs.push(out);
  }
  const normalized: string[] = [];
  for (const t of runs) {
    // Without the header's source (the command names this checkout's paths), the whole file compares.
    const n = await pktpath(['normalize', '--no-source', t]);
    assert.equal(n.code, 0, n.stderr);
    normalized.push(n.stdout);
  }
  for (const [i, n] of normalized.entries()) assert.equal(n, normalized[0], `run ${i} differs from the first`);
  // Nothing went wrong in the scenario: explain finds no cause in any run.
  for (const t of runs) {
    const why = await pktpath(['explain', '--fail-on-cause', 'any', t]);
    assert.equal(why.code, 0, why.stdout + why.stderr);
    assert.match(why.stdout, /^nothing to explain/);
  }
  const d = await pktpath(['diff', runs[0]!, runs[3]!, '--color', 'never']);
  assert.equal(d.code, 0, d.stdout);

  if (UPDATE) writeFileSync(GOLDEN, normalized[0]!);
  assert.equal(normalized[0], readFileSync(GOLDEN, 'utf8'), 'the scenario\'s journeys differ from fixtures/golden/regress (npm run golden:update)');
  // The golden file is a normalised trace diff reads back.
  const g = await pktpath(['diff', GOLDEN, runs[1]!, '--color', 'never']);
  assert.equal(g.code, 0, g.stdout + g.stderr);
});

test('a dropping nft rule, a DNAT and a removed route each make diff exit 1 and say what changed', async () => {
  // An nft rule that drops the UDP datagram in B.
  lab.nft(B, 'table inet pprg {\n  chain input {\n    type filter hook input priority 0;\n    udp dport 5353 drop\n  }\n}\n');
  const dropped = file('drop.jsonl');
  try {
    assert.equal((await recordScenario(dropped)).code, 0);
  } finally {
    lab.execSync(B, ['nft', 'delete', 'table', 'inet', 'pprg']);
  }
  const d1 = await pktpath(['diff', baseline, dropped, '--color', 'never']);
  assert.equal(d1.code, 1, d1.stdout + d1.stderr);
  const why = await pktpath(['explain', dropped]);
  assert.equal(why.stdout.split('\n')[0], `nft-drop: dropped by a netfilter rule in ${B} at local_in (--output-nft names the rule)`, why.stdout);
  assert.match(d1.stdout, /udp 192\.0\.2\.1:\$p\d > 192\.0\.2\.2:5353 \[> .*\]: ending: ended → dropped: NETFILTER_DROP at pprg-b\/veth-b by nft_do_chain/);
  const j1 = JSON.parse((await pktpath(['diff', baseline, dropped, '--json'])).stdout) as { changes: Array<{ kind: string }> };
  assert.ok(j1.changes.some((c) => c.kind === 'end'));

  // A DNAT in B: 5353 goes to a server on 5354.
  lab.nft(B, 'table ip pprg {\n  chain pre {\n    type nat hook prerouting priority -100;\n    udp dport 5353 dnat to 192.0.2.2:5354\n  }\n}\n');
  const natted = file('dnat.jsonl');
  try {
    assert.equal((await recordScenario(natted, { udpServe: 5354 })).code, 0);
  } finally {
    lab.execSync(B, ['nft', 'delete', 'table', 'ip', 'pprg']);
  }
  const d2 = await pktpath(['diff', baseline, natted, '--color', 'never']);
  assert.equal(d2.code, 1);
  assert.match(d2.stdout, /rewrite at nf:ipv4:local_in in pprg-b\/veth-b: none → DNAT 192\.0\.2\.2:5353 → 192\.0\.2\.2:5354/);
  assert.match(d2.stdout, /conntrack at nf:ipv4:pre_routing in pprg-b\/veth-b: not seen → NEW/);

  // The route from A to B removed: the scenario's packets never leave A.
  lab.execSync(A, ['ip', 'route', 'del', '192.0.2.0/24', 'dev', 'veth-a']);
  const unrouted = file('noroute.jsonl');
  try {
    await recordScenario(unrouted);
  } finally {
    lab.execSync(A, ['ip', 'route', 'add', '192.0.2.0/24', 'dev', 'veth-a']);
  }
  const d3 = await pktpath(['diff', baseline, unrouted, '--color', 'never']);
  assert.equal(d3.code, 1);
  assert.match(d3.stdout, /tcp 192\.0\.2\.1:\$p\d > 192\.0\.2\.2:8080: flow only in the first trace/);
  assert.match(d3.stdout, /icmp 192\.0\.2\.1 > 192\.0\.2\.2: flow only in the first trace/);

  // assert, on the DNAT run: the rewrite holds; on the drop run: the drop is named.
  const expect = file('expect.yaml');
  writeFileSync(expect, [
    'version: 1',
    'expect:',
    '  - name: UDP to 5353 is DNATed to 5354',
    '    match: { proto: udp, dst: 192.0.2.2:5353 }',
    '    dnat: 192.0.2.2:5354',
    '    passes: [nf:ipv4:pre_routing@pprg-b, nf:ipv4:local_in@pprg-b]',
    '  - name: every SYN to 8080 sees its connection NEW then ESTABLISHED',
    '    connection: true',
    '    match: { proto: tcp, dport: 8080, flags: SYN }',
    '    ct: [NEW, ESTABLISHED]',
    '',
  ].join('\n'));
  const a1 = await pktpath(['assert', natted, '--expect', expect, '--color', 'never']);
  assert.equal(a1.code, 0, a1.stdout + a1.stderr);
  assert.match(a1.stdout, /✓ UDP to 5353 is DNATed to 5354/);
  // The nat table makes conntrack run in B for every packet, the TCP connection's too.
  assert.match(a1.stdout, /✓ every SYN to 8080 sees its connection NEW then ESTABLISHED/);
  // Without it, in the baseline, conntrack sees no TCP there: the same expectation fails and says what it saw.
  const a2 = await pktpath(['assert', baseline, '--expect', expect, '--color', 'never']);
  assert.equal(a2.code, 1, a2.stdout + a2.stderr);
  assert.match(a2.stdout, /✗ every SYN to 8080 sees its connection NEW then ESTABLISHED: 1 of 1 matching connections do not hold: conntrack states NONE/);
});

test('assert: expectations that hold pass, wrong ones fail with the nearest journey; JUnit XML counts them', async () => {
  const expect = file('scenario.yaml');
  writeFileSync(expect, [
    'version: 1',
    'expect:',
    '  - name: ping reaches b',
    '    match: { proto: icmp, src: 192.0.2.1, dst: 192.0.2.2 }',
    '    passes: [nf:ipv4:local_out@pprg-a, tc:egress@pprg-a/veth-a, nf:ipv4:local_in@pprg-b]',
    '  - name: the echo reply reaches the ping socket',
    '    match: { proto: icmp, src: 192.0.2.2 }',
    '    count: { at_least: 1 }',
    '  - name: TCP data reaches the sockets',
    '    connection: true',
    '    match: { proto: tcp, dport: 8080 }',
    '    reaches_socket: true',
    '  - name: TCP to 8080 is not dropped',
    '    match: { proto: tcp, dport: 8080, ends: dropped }',
    '    count: 0',
    '  - name: wrong on purpose - UDP to 9999',
    '    match: { proto: udp, dport: 9999 }',
    '    ends: dropped',
    '    reason: NETFILTER_DROP',
    '  - name: wrong on purpose - ping passes forward',
    '    match: { proto: icmp, dst: 192.0.2.2 }',
    '    passes: [nf:ipv4:local_out@pprg-a, nf:ipv4:forward@pprg-b]',
    '',
  ].join('\n'));
  const junit = file('report.xml');
  const r = await pktpath(['assert', baseline, '--expect', expect, '--junit', junit, '--color', 'never']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /✓ ping reaches b\n/);
  assert.match(r.stdout, /✓ TCP data reaches the sockets\n/);
  assert.match(r.stdout, /✗ wrong on purpose - UDP to 9999: expected at least 1 packets matching, found 0\n\s+nearest: udp 192\.0\.2\.1:\d+ > 192\.0\.2\.2:5353/);
  assert.match(r.stdout, /differs: dport 5353, not 9999/);
  assert.match(r.stdout, /✗ wrong on purpose - ping passes forward: .*passes nf:ipv4:local_out@pprg-a but then not nf:ipv4:forward@pprg-b/);
  assert.match(r.stdout, /2 of 6 expectations fail/);

  const xml = readFileSync(junit, 'utf8');
  assert.equal(XMLValidator.validate(xml), true);
  const suite = (new XMLParser({ ignoreAttributes: false }).parse(xml) as {
    testsuites: { testsuite: { '@_tests': string; '@_failures': string; testcase: Array<{ failure?: unknown }> } };
  }).testsuites.testsuite;
  assert.equal(suite['@_tests'], '6');
  assert.equal(suite['@_failures'], '2');
  assert.equal(suite.testcase.filter((c) => c.failure !== undefined).length, 2);

  const good = file('good.yaml');
  writeFileSync(good, readFileSync(expect, 'utf8').split('  - name: wrong on purpose')[0]!);
  const ok = await pktpath(['assert', baseline, '--expect', good]);
  assert.equal(ok.code, 0, ok.stdout);
});

test('bad input: one line naming the file and line, exit 2', async () => {
  const lines = readFileSync(baseline, 'utf8').split('\n');
  const cases: Array<[string, string, RegExp]> = [
    ['truncated.jsonl', lines.slice(0, 5).join('\n') + '\n' + lines[5]!.slice(0, 40), /truncated\.jsonl:6: not JSON \(a truncated line\?\)/],
    ['version.jsonl', lines[1]!.replace('"v":1', '"v":9'), /version\.jsonl:1: schema version 9/],
    ['text.jsonl', 'hello\n', /text\.jsonl:1: not JSON/],
    ['empty.jsonl', '', /empty\.jsonl: is empty: no records/],
  ];
  for (const [name, text, message] of cases) {
    writeFileSync(file(name), text);
    for (const args of [['normalize', file(name)], ['diff', baseline, file(name)]]) {
      const r = await pktpath(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  }
  writeFileSync(file('bad.yaml'), 'expect:\n  - name: x\n    match: { dst: 192.0.2.300 }\n');
  const r = await pktpath(['assert', baseline, '--expect', file('bad.yaml')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.yaml:3: '192\.0\.2\.300' is not an address/);
  assert.equal(existsSync(file('nothing.xml')), false);
});

test('--ready-file: created once everything is attached, gone after', async () => {
  const readyFile = file('ready');
  const child = (await import('node:child_process')).spawn(
    ...pktpathPrivately(['--filter-ip', '192.0.2.2', '--ready-file', readyFile, '--output-file', file('plain.txt')]), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const until = Date.now() + 30_000;
  while (!existsSync(readyFile) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(readyFile), stderr);
  assert.match(stderr, /attached/);
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  assert.equal(existsSync(readyFile), false);
});
