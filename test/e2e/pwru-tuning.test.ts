/**
 * pwru's tuning flags on real traffic in the test's own namespaces:
 * --set-percpu-buf sizes what --output-skb prints, --netns-names-max-length
 * cuts the NETNS column, --debug prints the verifier's log of what is loaded,
 * --filter-kprobe-batch says in one line where the kprobe backend is not used.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Lab } from '../../src/lab/lab.js';
import { PKTPATH, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab(`pwtune${process.pid % 100000}`);
let A = '';
let B = '';

before(() => {
  A = lab.netns('a');
  B = lab.netns('receiver-side');
  lab.veth({ ns: A, ifname: 'veth-a', addrs: ['192.0.2.1/24'] }, { ns: B, ifname: 'veth-b', addrs: ['192.0.2.2/24'] });
});
after(() => lab.cleanup());
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

const ping = async () => {
  const r = await lab.exec(A, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '192.0.2.2']);
  assert.equal(r.code, 0, r.stderr);
};

/** pktpath in text (not JSON) over the ping, until the ping is done; its exit code and output. */
function textRun(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('unshare', ['--net', '--', process.execPath, PKTPATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      const before = stderr;
      stderr += d.toString();
      if (!/pktpath: attached /.test(before) && /pktpath: attached /.test(stderr)) {
        ping().then(() => new Promise((r) => setTimeout(r, 300))).finally(() => child.kill('SIGINT'))
          .then(async () => resolve({ code: await exited, stdout, stderr }), reject);
      }
    });
    void exited.then((code) => {
      if (!/pktpath: attached /.test(stderr)) resolve({ code, stdout, stderr });
    });
  });
}

const inB = () => ['--filter-netns', B, '--filter-proto', 'icmp'];

test('--set-percpu-buf: the printed skb and shared info fill the room given, and no more', async () => {
  const small = await startTracer([...inB(), '--filter-func', '^(netif_receive_skb|net_dev_start_xmit)$', '--output-skb', '--output-skb-shared-info', '--set-percpu-buf', '512']);
  const whole = await startTracer([...inB(), '--filter-func', '^(netif_receive_skb|net_dev_start_xmit)$', '--output-skb', '--output-skb-shared-info']);
  await ping();
  const [s, w] = [await small.stop(), await whole.stop()];
  assert.equal(s.code, 0, s.stderr);
  assert.equal(w.code, 0, w.stderr);
  assert.ok(s.events.length >= 4 && w.events.length >= 4, `${s.events.length} and ${w.events.length} events`);
  for (const e of s.events) {
    // The kernel's text of an skb is longer than 512 bytes: cut at the room, less its NUL.
    assert.equal(e.skb_dump!.skb!.length, 511, e.func);
    assert.match(e.skb_dump!.skb!, /^\(struct sk_buff\)\{/);
    assert.ok(e.skb_dump!.shared_info!.length <= 511 && e.skb_dump!.shared_info!.startsWith('(struct skb_shared_info){'));
  }
  // pktpath's default room (3072) holds more of the same skb's text.
  for (const e of w.events) assert.ok(e.skb_dump!.skb!.length > 511, `${e.func}: ${e.skb_dump!.skb!.length}`);

  const bad = runPktpath([...inB(), '--output-skb', '--set-percpu-buf', '100']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'pktpath: --set-percpu-buf: \'100\' is out of range (256-32000)\n');
});

test('--netns-names-max-length: the NETNS column cut to the length given, pwru\'s floor of 10', async () => {
  assert.ok(B.length > 16, B);
  const cut = await textRun([...inB(), '--output-meta', '--output-netns-names', '--netns-names-max-length', '12', '--filter-func', '^netif_receive_skb$']);
  assert.equal(cut.code, 0, cut.stderr);
  const lines = cut.stdout.split('\n').filter((l) => l.includes('netif_receive_skb'));
  assert.ok(lines.length >= 2, cut.stdout);
  for (const l of lines) {
    assert.ok(l.includes(` ${B.slice(0, 12)} `), l);
    assert.ok(!l.includes(B.slice(0, 13)), l);
  }
  const floor = await textRun([...inB(), '--output-meta', '--output-netns-names', '--netns-names-max-length', '4', '--filter-func', '^netif_receive_skb$']);
  assert.ok(floor.stdout.split('\n').some((l) => l.includes(` ${B.slice(0, 10)} `) && !l.includes(B.slice(0, 11))), floor.stdout);
  // JSON keeps the whole name.
  const json = await startTracer([...inB(), '--output-netns-names', '--netns-names-max-length', '12', '--filter-func', '^netif_receive_skb$']);
  await ping();
  const j = await json.stop();
  assert.ok(j.events.length > 0 && j.events.every((e) => e.netns_name === B), JSON.stringify(j.events[0]));
});

test('--debug: the verifier\'s log of every program loaded and libbpf\'s messages on stderr, escaped', async () => {
  const t = await startTracer([...inB(), '--filter-func', '^netif_receive_skb$', '--debug']);
  await ping();
  const r = await t.stop();
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.ok(r.events.length >= 2);
  // The tracepoint program's log, as loaded (a successful load: the verifier's statistics).
  assert.match(r.stderr, /prog 'pktpath_tp_0': -- BEGIN PROG LOAD LOG --\nprocessed \d+ insns/);
  assert.match(r.stderr, /libbpf: loading object from .*tracepoint\.bpf\.o/);
  // Nothing raw reaches the terminal: control characters are escapes.
  assert.doesNotMatch(r.stderr, /[\x00-\x08\x0b-\x1f\x7f]/);
  // Without it, none of that.
  const quiet = await startTracer([...inB(), '--filter-func', '^netif_receive_skb$']);
  const q = await quiet.stop();
  assert.doesNotMatch(q.stderr, /BEGIN PROG LOAD LOG|libbpf:/);
});

test('--filter-kprobe-batch: one line where the kprobe backend is not used, exit 0; bad values refused before anything loads', async () => {
  const r = runPktpath([...inB(), '--filter-kprobe-batch', '10', '--duration', '1']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.includes('--filter-kprobe-batch'));
  // Where this kernel has kprobes, the backend stays among those tried and nothing is said.
  if (/│ kprobe\s+│ refused/.test(runPktpath(['doctor']).stdout)) {
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^pktpath: --filter-kprobe-batch: applies to the kprobe backend, not used here \(.+\); ignored$/);
  }
  const listed = runPktpath(['list', ...inB(), '--attach', 'tracepoints', '--filter-kprobe-batch', '10']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stderr, /^pktpath: --filter-kprobe-batch: applies to the kprobe backend, not used here \(--attach leaves out functions\); ignored$/m);
  const bad = runPktpath([...inB(), '--filter-kprobe-batch', '0']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'pktpath: --filter-kprobe-batch: \'0\' is out of range (1-4096)\n');
  assert.deepEqual(await waitNoPrograms(), []);
});

test('--filter-xdp-expr, --output-xdp-metadata: checked against this kernel\'s xdp_buff, refused in one line where fentry is', async () => {
  const fentryRefused = /│ fentry\s+│ refused/.test(runPktpath(['doctor']).stdout);
  const run = (args: string[]) => runPktpath([...inB(), '--filter-trace-xdp', ...args]);
  // A wrong field: a usage error with its column, whatever the kernel allows.
  const bad = run(['--filter-xdp-expr', 'xdp->rxq->dev->ifidx == 9']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'pktpath: --filter-xdp-expr: at column 16: struct net_device has no field \'ifidx\' (did you mean \'ifindex\'?)\n');
  const alone = runPktpath([...inB(), '--output-xdp-metadata', 'xdp->rxq->queue_index']);
  assert.equal(alone.code, 2);
  assert.match(alone.stderr, /^pktpath: --output-xdp-metadata: reads the xdp_buff of the XDP programs --filter-trace-xdp traces: add --filter-trace-xdp\n$/);
  // Where fentry works, both run: test/kernels/probe.test.ts and guest.test.ts show them on real frames.
  if (fentryRefused) {
    const good = run(['--filter-xdp-expr', 'xdp->rxq->dev->ifindex == 9', '--output-xdp-metadata', 'xdp->rxq->queue_index,xdp->data[0:14]']);
    assert.equal(good.code, 1, good.stderr);
    assert.match(good.stderr, /^pktpath: --filter-xdp-expr, --output-xdp-metadata: read the xdp_buff of traced XDP programs through fentry, which this kernel refuses \(.+\); `pktpath doctor` shows what works\n$/);
  }
  assert.deepEqual(await waitNoPrograms(), []);
});

test('--filter-track-bpf-helpers, --output-bpfmap: each needs what it builds on (usage, exit 2); where fentry is refused, one line and exit 1, nothing attached', async () => {
  const fentryRefused = /│ fentry\s+│ refused/.test(runPktpath(['doctor']).stdout);
  const alone = runPktpath([...inB(), '--filter-track-bpf-helpers']);
  assert.equal(alone.code, 2);
  assert.equal(alone.stderr, 'pktpath: --filter-track-bpf-helpers: follows the helper calls of the programs --filter-trace-tc/--filter-trace-xdp trace: add one of them\n');
  const mapsAlone = runPktpath([...inB(), '--filter-trace-tc', '--output-bpfmap']);
  assert.equal(mapsAlone.code, 2);
  assert.equal(mapsAlone.stderr, 'pktpath: --output-bpfmap: map operations are seen as helper calls of traced programs: add --filter-track-bpf-helpers\n');
  if (!fentryRefused) return;
  for (const flags of [['--filter-track-bpf-helpers'], ['--filter-track-bpf-helpers', '--output-bpfmap']]) {
    const r = runPktpath([...inB(), '--filter-trace-tc', ...flags, '--duration', '1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^pktpath: --filter-track-bpf-helpers(, --output-bpfmap)?: helper calls are seen through fentry\/fexit on the traced programs and the helpers' kernel functions, which this kernel refuses \(.+\); `pktpath doctor` shows what works\n$/);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(await waitNoPrograms(), []);
});

test('--attach none: BPF programs only; where fentry is refused, one line and exit 1, nothing attached', async () => {
  const fentryRefused = /│ fentry\s+│ refused/.test(runPktpath(['doctor']).stdout);
  const none = runPktpath([...inB(), '--attach', 'none']);
  assert.equal(none.code, 2);
  assert.equal(none.stderr, 'pktpath: --attach none: traces only BPF programs: give --filter-trace-tc or --filter-trace-xdp (or name the families to attach)\n');
  if (!fentryRefused) return;
  for (const flags of [['--filter-trace-tc'], ['--filter-trace-xdp'], ['--filter-trace-tc', '--filter-trace-xdp']]) {
    const r = runPktpath([...inB(), '--attach', 'none', ...flags, '--duration', '1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^pktpath: --filter-trace-(tc|xdp)(\/--filter-trace-xdp)?: tracing BPF programs needs fentry, which this kernel refuses \(.+\); `pktpath doctor` shows what works\n$/);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(await waitNoPrograms(), []);
});
