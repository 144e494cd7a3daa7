/**
 * The settings of traced namespaces, read from the kernel: each namespace's
 * own /proc/sys/net (read from one thread that enters them in turn), its
 * devices and routes; a change made while tracing (a sysctl a netconf message
 * announces, one no message announces, an MTU, a route) gives a new record;
 * a namespace made while tracing is read; `datapath` shows them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { resolveNetns } from '../../src/kernel/netns.js';
import { readSettings, readSysctl } from '../../src/kernel/settings.js';
import type { JsonSettingsRecord } from '../../src/output/settings.js';
import { assertClean } from '../helpers/clean.js';
import { validateDatapath } from '../helpers/schema.js';
import { pktpathPrivately, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab(`st30-${process.pid % 10000}`);
let router: string;
let host: string;

before(() => {
  router = lab.netns('r');
  host = lab.netns('h');
  lab.veth({ ns: router, ifname: 'st-r0', addrs: ['192.0.2.1/24'] }, { ns: host, ifname: 'st-h0', addrs: ['192.0.2.2/24'] });
  lab.execSync(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=2', 'net.ipv4.conf.st-r0.proxy_arp=1']);
  lab.execSync(router, ['ip', 'link', 'set', 'st-r0', 'mtu', '1400']);
  lab.execSync(router, ['ip', 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.2']);
  lab.execSync(host, ['sysctl', '-qw', 'net.ipv4.ip_forward=0', 'net.ipv4.conf.all.rp_filter=1']);
});
after(async () => {
  lab.cleanup();
  await waitNoPrograms();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function settingsOf(stdout: string, netnsName: string): JsonSettingsRecord[] {
  return stdout.split('\n').filter((l) => l.includes('"type":"settings"')).map((l) => JSON.parse(l) as JsonSettingsRecord)
    .filter((r) => r.netns_name === netnsName);
}

test('each namespace\'s own sysctls, devices and routes, read from this thread in turn', () => {
  const here = readSysctl('/proc/sys/net/ipv4/ip_forward');
  const r = readSettings(resolveNetns(router)).settings;
  const h = readSettings(resolveNetns(host)).settings;
  assert.equal(r.ipv4.forwarding, 1);
  assert.equal(h.ipv4.forwarding, 0, '/proc/sys/net is the namespace of the thread that reads it');
  assert.equal(r.ipv4.conf['all']!.rp_filter, 2);
  assert.equal(h.ipv4.conf['all']!.rp_filter, 1);
  assert.equal(r.ipv4.conf['st-r0']!.proxy_arp, 1);
  assert.equal(h.ipv4.conf['st-h0']!.proxy_arp, 0);
  assert.equal(readSysctl('/proc/sys/net/ipv4/ip_forward'), here, 'the thread is back in its own namespace');
  const dev = r.devices.find((d) => d.name === 'st-r0');
  assert.deepEqual({ mtu: dev?.mtu, up: dev?.up, kind: dev?.kind, v4: dev?.addresses.filter((a) => !a.includes(':')) },
    { mtu: 1400, up: true, kind: 'veth', v4: ['192.0.2.1/24'] });
  assert.ok(r.routes.some((x) => x.family === 4 && x.table === 'main' && x.dst === '198.51.100.0/24' && x.gateway === '192.0.2.2' && x.dev === 'st-r0'));
  assert.ok(r.routes.some((x) => x.table === 'local' && x.type === 'local' && x.dst === '192.0.2.1/32'));
  assert.ok(r.rules.some((x) => x.family === 4 && x.priority === 32766 && x.table === 'main' && x.selector === 'from all'));
  assert.ok(r.ipv6 === undefined || r.ipv6.conf['st-r0'] !== undefined);
});

test('a change while tracing gives a new settings record: netconf, unannounced sysctl, MTU, route', async () => {
  const tracer = await startTracer(['--filter-netns', router, '--filter-proto', 'udp']);
  let stopped = false;
  try {
    // First alone, a value no message announces: found by the low-rate check (every 2 s).
    lab.execSync(router, ['sysctl', '-qw', 'net.ipv4.conf.st-r0.arp_ignore=2']);
    await sleep(4500);
    lab.execSync(router, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1']);
    lab.execSync(router, ['ip', 'link', 'set', 'st-r0', 'mtu', '1300']);
    lab.execSync(router, ['ip', 'route', 'add', '203.0.113.0/24', 'via', '192.0.2.2']);
    // The monitors are read every 0.5 s, the unannounced values every 2 s.
    await sleep(5000);
    const { code, stdout, stderr } = await tracer.stop();
    stopped = true;
    assert.equal(code, 0, stderr);
    const records = settingsOf(stdout, router);
    assert.ok(records.length >= 2, `a first record and at least one change: ${records.length}\n${stderr}`);
    const [first, last] = [records[0]!, records.at(-1)!];
    assert.equal(first.ipv4.forwarding, 1);
    assert.equal(first.ipv4.conf['all']!.rp_filter, 2);
    assert.equal(first.devices.find((d) => d.name === 'st-r0')?.mtu, 1400);
    assert.equal(first.ipv4.conf['st-r0']!.arp_ignore, 0);
    assert.ok(records.some((r) => r.ipv4.conf['st-r0']!.arp_ignore === 2 && r.devices.find((d) => d.name === 'st-r0')?.mtu === 1400),
      'arp_ignore alone gave a record of its own');
    assert.equal(last.ipv4.conf['all']!.rp_filter, 1);
    assert.equal(last.ipv4.conf['st-r0']!.arp_ignore, 2);
    assert.equal(last.devices.find((d) => d.name === 'st-r0')?.mtu, 1300);
    assert.ok(last.routes.some((x) => x.dst === '203.0.113.0/24' && x.gateway === '192.0.2.2'));
    for (let i = 1; i < records.length; i++) {
      assert.notDeepEqual({ ...records[i], time: '' }, { ...records[i - 1], time: '' }, 'a record only when something changed');
      assert.ok(records[i]!.time > records[i - 1]!.time);
    }
    // The first line of the output is a settings record: read before anything was attached.
    assert.match(stdout.split('\n')[0]!, /^\{"v":1,"type":"settings"/);
  } finally {
    if (!stopped) await tracer.stop().catch(() => {});
    lab.execSync(router, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=2', 'net.ipv4.conf.st-r0.arp_ignore=0']);
    lab.execSync(router, ['ip', 'link', 'set', 'st-r0', 'mtu', '1400']);
  }
});

test('a namespace made while tracing is read, and its change followed', async () => {
  const tracer = await startTracer(['--filter-proto', 'udp', '--filter-dst-port', '9']);
  let stopped = false;
  let late = '';
  try {
    late = lab.netns('late');
    const inode = resolveNetns(late).inode;
    await sleep(1500);
    lab.execSync(late, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await sleep(3000);
    // Going away is the topology's to say: nothing about its settings.
    lab.removeNetns(late);
    await sleep(1500);
    const { code, stdout, stderr } = await tracer.stop();
    stopped = true;
    assert.equal(code, 0, stderr);
    const records = settingsOf(stdout, late);
    assert.ok(records.length >= 1, `the new namespace's settings are read:\n${stderr}`);
    assert.equal(records[0]!.netns, inode);
    assert.equal(records.at(-1)!.ipv4.forwarding, 1);
    assert.ok(records.at(-1)!.devices.some((d) => d.name === 'lo' && d.up));
    assert.doesNotMatch(stderr, /settings of netns/);
  } finally {
    if (!stopped) await tracer.stop().catch(() => {});
    if (late) lab.removeNetns(late);
  }
});

test('--output-settings prints a block at the start and a line per change; nothing without it', async () => {
  const run = (args: string[], change: boolean) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const [cmd, argv] = pktpathPrivately(['--filter-netns', router, '--filter-proto', 'udp', '--duration', '5', ...args]);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const had = /attached /.test(stderr);
      stderr += d.toString();
      if (change && !had && /attached /.test(stderr)) lab.execSync(router, ['ip', 'link', 'set', 'st-r0', 'mtu', '1280']);
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  try {
    const shown = await run(['--output-settings'], true);
    assert.equal(shown.code, 0, shown.stderr);
    assertClean(shown.stdout, 'pktpath --output-settings');
    assert.match(shown.stdout, new RegExp(`^settings netns ${router} \\(inode \\d+\\): net\\.ipv4\\.ip_forward=1$`, 'm'));
    assert.match(shown.stdout, /^ {2}ipv4 conf st-r0: forwarding=1 rp_filter=0 proxy_arp=1 /m);
    assert.match(shown.stdout, /^ {2}device st-r0 \(ifindex \d+\) veth mtu 1400 up /m);
    assert.match(shown.stdout, new RegExp(`^settings netns ${router} \\(inode \\d+\\) changed: device st-r0 mtu 1400→1280$`, 'm'));
    const quiet = await run([], false);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stdout, /settings/);
  } finally {
    lab.execSync(router, ['ip', 'link', 'set', 'st-r0', 'mtu', '1400']);
  }
});

test('datapath shows each namespace\'s settings, in text and JSON', () => {
  const json = runPktpath(['datapath', '--filter-netns', router, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const inv = JSON.parse(json.stdout) as { namespaces: Array<{ settings: JsonSettingsRecord | null }> };
  assert.equal(validateDatapath(inv), null);
  const s = inv.namespaces[0]!.settings!;
  assert.equal(s.ipv4.forwarding, 1);
  assert.equal(s.ipv4.conf['st-r0']!.proxy_arp, 1);
  assert.equal(s.devices.find((d) => d.name === 'st-r0')?.mtu, 1400);
  const text = runPktpath(['datapath', '--filter-netns', router]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^ {2}settings: net\.ipv4\.ip_forward=1$/m);
  assert.match(text.stdout, /^ {4}ipv4 conf all: forwarding=1 rp_filter=2 /m);
  assert.match(text.stdout, /^ {4}route ipv4 table main 198\.51\.100\.0\/24 via 192\.0\.2\.2 dev st-r0$/m);
});

test('a device name with terminal controls: kept in JSON, escaped in text, its sysctls still read', () => {
  const evil = 'st\u001b[31m\u202e';
  lab.execSync(host, ['ip', 'link', 'add', evil, 'type', 'veth', 'peer', 'name', 'st-h9']);
  try {
    const json = runPktpath(['datapath', '--filter-netns', host, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assertClean(json.stdout, 'datapath --json');
    const s = (JSON.parse(json.stdout) as { namespaces: Array<{ settings: JsonSettingsRecord }> }).namespaces[0]!.settings;
    assert.ok(s.devices.some((d) => d.name === evil && d.kind === 'veth'));
    assert.deepEqual(s.ipv4.conf[evil], s.ipv4.conf['default'], 'its conf directory is read (a new device\'s copies default)');
    const text = runPktpath(['datapath', '--filter-netns', host]);
    assertClean(text.stdout, 'datapath');
    assert.match(text.stdout, /^ {4}device st\\x1b\[31m\\u202e \(ifindex \d+\) veth mtu 1500 down/m);
  } finally {
    lab.execSync(host, ['ip', 'link', 'del', evil]);
  }
});

test('record: the trace holds the settings after its header, a change as it came; show and normalize read it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-st30-'));
  try {
    const out = join(dir, 'trace.jsonl');
    const record = runPktpath(['record', '--out', out, '--filter-netns', router, '--filter-proto', 'udp', '--',
      'bash', '-c', `sleep 0.5; ip -n ${router} link set st-r0 mtu 1350; sleep 2`], { prefix: ['unshare', '--net', '--'] });
    assert.equal(record.code, 0, record.stderr);
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type?: string });
    assert.equal(lines[0]!.type, 'header');
    assert.equal(lines[1]!.type, 'settings', 'the settings read before attaching follow the header');
    const records = lines.filter((l): l is JsonSettingsRecord => l.type === 'settings');
    assert.equal(records[0]!.devices.find((d) => d.name === 'st-r0')?.mtu, 1400);
    assert.equal(records.at(-1)!.devices.find((d) => d.name === 'st-r0')?.mtu, 1350);
    const show = runPktpath(['show', out, '--output-settings']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^settings netns ${router} \\(inode \\d+\\) changed: device st-r0 mtu 1400→1350$`, 'm'));
    const norm = runPktpath(['normalize', out]);
    assert.equal(norm.code, 0, norm.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    lab.execSync(router, ['ip', 'link', 'set', 'st-r0', 'mtu', '1400']);
  }
});
