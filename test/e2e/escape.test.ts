/**
 * Names in the kernel are anyone's: a process whose comm is a terminal escape
 * (written to /proc/self/comm), in a namespace and behind a device whose
 * names hold ESC, sends UDP; pktpath's text of it holds no escape but its own.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Lab } from '../../src/lab/lab.js';
import { assertClean } from '../helpers/clean.js';
import { pktpathPrivately, waitNoPrograms } from '../helpers/tracer.js';

/** Clear screen, a window title (OSC … BEL), a C1 CSI (0x9b) clearing again: 13 bytes, within a comm's 15. */
const COMM = Buffer.from([0x1b, 0x5b, 0x32, 0x4a, 0x1b, 0x5d, 0x30, 0x3b, 0x78, 0x07, 0x9b, 0x32, 0x4a]);
const NAME = 'e\x1b[2J';
const lab = new Lab();
let A = '';

before(() => {
  A = lab.netns(NAME);
  const b = lab.netns('b');
  lab.veth({ ns: A, ifname: `v${NAME.slice(1)}`, addrs: ['192.0.2.1/24'] }, { ns: b, ifname: 'veth-b', addrs: ['192.0.2.2/24'] });
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** Renames itself to COMM, then sends three datagrams to 192.0.2.2:9 (the first waits for ARP). */
const SENDER = `require('fs').writeFileSync('/proc/self/comm', Buffer.from(process.argv[1], 'hex'));
const s = require('dgram').createSocket('udp4');
let n = 0;
const send = () => s.send('x', 9, '192.0.2.2', () => (++n < 3 ? setTimeout(send, 50) : s.close()));
send();`;

/** pktpath with `args` on A's UDP to port 9, while the sender runs; its raw output. */
async function trace(args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }> {
  const [cmd, argv] = pktpathPrivately(['--filter-netns', `/run/netns/${A}`, ...args, 'udp and dst port 9']);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pktpath did not attach: ${Buffer.concat(err).toString()}`)), 30_000);
    child.stderr.on('data', (d: Buffer) => {
      err.push(d);
      if (/pktpath: attached/.test(Buffer.concat(err).toString())) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  try {
    const sent = await lab.exec(A, [process.execPath, '-e', SENDER, COMM.toString('hex')]);
    assert.equal(sent.code, 0, sent.stderr);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    child.kill('SIGINT');
  }
  return { code: await exited, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

test('text: the comm, the namespace and the device escaped, columns and lines intact', async () => {
  const r = await trace(['--output-meta', '--output-tuple', '--output-netns-names', '--color', 'never']);
  assert.equal(r.code, 0, r.stderr.toString());
  assertClean(r.stdout, 'stdout');
  assertClean(r.stderr, 'stderr');
  const lines = r.stdout.toString().trim().split('\n').slice(1);
  assert.ok(lines.length >= 3, r.stdout.toString());
  // PROCESS keeps the comm's end (cut like pwru's), so the C1 CSI shows there; NETNS and IFACE in full.
  assert.ok(lines.some((l) => /\\x9b2J:\d+ +\S*e\\x1b\[2J +0x0 +v\\x1b\[2J:\d+ +0x0800 .*192\.0\.2\.1:\d+->192\.0\.2\.2:9\(udp\)/.test(l)),
    r.stdout.toString());
});

test('--group-by skb: the whole comm escaped in each packet\'s head', async () => {
  const r = await trace(['--group-by', 'skb', '--output-tuple', '--color', 'never']);
  assert.equal(r.code, 0, r.stderr.toString());
  assertClean(r.stdout, 'stdout');
  assert.match(r.stdout.toString(), / \\x1b\[2J\\x1b\]0;x\\x07\\x9b2J:\d+  \d+ hops?/);
  assert.match(r.stdout.toString(), /\n {2}\+\S+ +\S+ +v\\x1b\[2J:\d+ +\S*e\\x1b\[2J/);
});
