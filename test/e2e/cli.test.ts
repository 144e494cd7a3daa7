/** The binary's contract at its edges: bad input, missing privileges, being killed. */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { ourPrograms, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

for (const [args, pattern] of [
  [['--filter-dst-ip', '300.1.1.1'], /--filter-dst-ip: '300\.1\.1\.1' is not an IPv4 or IPv6 address/],
  [['--filter-proto', 'bogus'], /--filter-proto: 'bogus' is not a protocol/],
  [['--filter-dst-port', '70000'], /--filter-dst-port: '70000' is not a port/],
  [['--filter-src-ip', '192.0.2.1', '--filter-dst-ip', '2001:db8::1'], /mix IPv4 and IPv6/],
  [['--no-such-flag'], /unknown option '--no-such-flag'/],
  [['--timestamp', 'sometimes'], /--timestamp: 'sometimes' is not one of/],
] as const) {
  test(`bad input ${args.join(' ')}: one line, exit 2, nothing attached`, () => {
    const r = runPktpath([...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, `more than one line:\n${r.stderr}`);
    assert.match(r.stderr, /^pktpath: /);
    assert.equal(r.stdout, '');
    assert.deepEqual(ourPrograms(), []);
  });
}

test('without privileges: a clear message, exit 1', () => {
  // Root without any capability: what an unprivileged user has.
  const r = runPktpath(['--filter-dst-ip', '192.0.2.2'], {
    prefix: ['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--'],
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^pktpath: needs root .*run it with sudo$/m);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('killed with SIGKILL, the tracer leaves nothing attached', async () => {
  const tracer = await startTracer(['--filter-dst-ip', '192.0.2.2']);
  assert.ok(ourPrograms().length > 0, 'the tracer should have programs loaded while running');
  tracer.child.kill('SIGKILL');
  await new Promise((r) => tracer.child.once('exit', r));
  assert.deepEqual(await waitNoPrograms(), []);
});

test('doctor reports each mechanism and what will be used', () => {
  const r = runPktpath(['doctor']);
  assert.equal(r.code, 0, r.stderr);
  for (const m of ['tp_btf', 'tcx', 'netfilter links', 'kprobe', 'fentry']) assert.match(r.stdout, new RegExp(m));
  assert.match(r.stdout, /pktpath will use: .*skb tracepoints/);
});

test('list shows the observation points without attaching', () => {
  const r = runPktpath(['list', '--filter-func', 'kfree_skb|tc:.*|nf:ipv4:local_in']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['kfree_skb', 'tc:ingress', 'tc:egress', 'nf:ipv4:local_in']);
  assert.deepEqual(ourPrograms(), []);
});
