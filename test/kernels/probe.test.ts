/**
 * What function and program probes carry, in each stock kernel
 * (scripts/test-kernels.sh): --output-retval with each backend the kernel
 * allows (fexit after fentry entries, kretprobes after kprobe and
 * kprobe-multi entries), and --output-xdp-metadata on an XDP program's real
 * frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { runPktpath, startTracer } from '../helpers/tracer.js';
import { ATTACH_MS, BACKENDS, KERNEL, OBJECTS, pktpathPrograms, since, traced } from './guest.js';

/** The probe that reads a function's return after entries of each backend (src/trace/functions.ts, returnProbe). */
const RETURN_PROBE = { fentry: 'fexit', kprobe: 'kretprobe', 'kprobe-multi': 'kretprobe-multi' } as const;

for (const backend of BACKENDS) {
  const probe = RETURN_PROBE[backend];
  test(`${KERNEL}: --output-retval with ${backend} entries (${probe}): a dropped path's and a normal path's return values, each after its entry`,
    { skip: !since(5, 15) && 'no bpf_get_func_ip before 5.15: return values are refused' }, async () => {
    const { events, stderr } = await traced(
      ['--attach', 'functions', '--backend', backend, '--filter-func', '^(nf_hook_slow|ip_rcv|ip_local_deliver)$', '--output-retval'],
      async (lab, a, b) => {
        await lab.exec(a, ['ping', '-c', '1', '-W', '2', '192.0.2.2']);
        // B's input drops the next request: nf_hook_slow returns NF_DROP's error.
        lab.nft(b, 'table inet t {\n chain i {\n  type filter hook input priority 0;\n  icmp type echo-request drop\n }\n}\n');
        await lab.exec(a, ['ping', '-c', '1', '-W', '1', '192.0.2.2']);
      },
    );
    const type = probe === 'fexit' ? 'fexit' : 'kretprobe';
    const exits = events.filter((e) => e.probe.type === type);
    const seen = exits.map((e) => `${e.func} → ${e.retval?.text}`);
    process.stdout.write(`# ${KERNEL} ${backend}: return values seen (${probe}): ${[...new Set(seen)].join(', ')}\n`);
    assert.match(stderr, new RegExp(`return values: 3 functions with ${probe} `));
    assert.ok(exits.some((e) => e.func === 'ip_rcv' && e.retval?.text === '0'), seen.join('\n'));
    assert.ok(exits.some((e) => e.func === 'nf_hook_slow' && e.retval?.text === '1'), seen.join('\n'));
    assert.ok(exits.some((e) => e.func === 'nf_hook_slow' && e.retval?.text === '-EPERM' && e.retval.value === -1), seen.join('\n'));
    // Every record of a return carries one, and each exit repeats its entry's packet, after it: the same skb and function, earlier.
    assert.ok(events.every((e) => (e.probe.type === type) === (e.retval !== undefined)), JSON.stringify(events.filter((e) => e.retval)));
    for (const x of exits) {
      assert.equal(x.tuple?.daddr, '192.0.2.2', JSON.stringify(x));
      const at = events.indexOf(x);
      assert.ok(events.slice(0, at).some((e) => e.probe.type !== type && e.skb === x.skb && e.func === x.func), `no entry before ${JSON.stringify(x)}`);
      assert.ok(x.retval!.duration_ns > 0);
    }
  });
}

test(`${KERNEL}: --output-retval where no backend the run may use is allowed: one line, exit 1, nothing attached`,
  { skip: BACKENDS.length === 3 && 'every backend works here' }, () => {
  const refused = (['kprobe-multi', 'kprobe', 'fentry'] as const).find((b) => !BACKENDS.includes(b))!;
  const before = pktpathPrograms();
  const r = runPktpath(['--attach', 'functions', '--backend', refused, '--output-retval', '--duration', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^pktpath: --backend ${refused}: this kernel refuses it \\(.+\\); .pktpath doctor. shows what works, --backend auto picks it\\n$`));
  assert.equal(pktpathPrograms(), before);
});

test(`${KERNEL}: --output-xdp-metadata: an XDP program's xdp_buff fields at its entry and exit, on real frames, in JSON and text`,
  { skip: !BACKENDS.includes('fentry') && 'no fentry here' }, async () => {
  const lab = new Lab('pm');
  try {
    const { a, b } = twoHosts(lab);
    lab.execSync(b, ['ip', 'link', 'set', 'dev', 'veth-b', 'xdpgeneric', 'obj', `${OBJECTS}/xdp_policy.bpf.o`, 'sec', 'xdp']);
    const ifindex = Number(lab.execSync(b, ['cat', '/sys/class/net/veth-b/ifindex']).trim());
    const fields = 'xdp->rxq->dev->ifindex,xdp->rxq->queue_index,xdp->data[12:2],((struct iphdr *)(xdp->data + 14))->ttl';
    const args = ['--attach', 'none', '--filter-trace-xdp', '--filter-proto', 'udp', '--output-xdp-metadata', fields];
    const json = await startTracer(args, ATTACH_MS);
    lab.execSync(a, ['bash', '-c', 'echo x > /dev/udp/192.0.2.2/7777; echo x > /dev/udp/192.0.2.2/9999']);
    const r = await json.stop();
    assert.equal(r.code, 0, r.stderr);
    const frames = r.events.filter((e) => e.func === 'bpf:xdp_policy' || e.func === 'bpf:xdp_policy:exit');
    process.stdout.write(`# ${KERNEL}: xdp metadata seen: ${JSON.stringify([...new Set(frames.map((e) => JSON.stringify(e.xdp_metadata)))])}\n`);
    // Entry and exit of both datagrams, each with the fields read from its xdp_buff.
    assert.equal(frames.length, 4, `${JSON.stringify(r.events)}\n${r.stderr}`);
    for (const e of frames) {
      assert.deepEqual(e.xdp_metadata, {
        'xdp->rxq->dev->ifindex': ifindex, 'xdp->rxq->queue_index': 0, 'xdp->data[12:2]': { hex: '0800' },
        '((struct iphdr *)(xdp->data + 14))->ttl': 64,
      }, JSON.stringify(e));
      assert.equal(e.skb_metadata, undefined);
    }
    assert.equal(frames.find((e) => e.tuple?.dport === 9999 && e.func.endsWith(':exit'))?.verdict?.action, 'drop');

    // Text: `pktpath show` of the trace puts the fields on the event's line, as --output-skb-metadata's.
    const dir = mkdtempSync(join(tmpdir(), 'pktpath-xdp-meta-'));
    try {
      writeFileSync(join(dir, 'trace.jsonl'), r.stdout);
      const shown = runPktpath(['show', join(dir, 'trace.jsonl')]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`xdp->rxq->dev->ifindex=0x${ifindex.toString(16)} xdp->rxq->queue_index=0x0 xdp->data\\[12:2\\]=0800 ` +
        '\\(\\(struct iphdr \\*\\)\\(xdp->data \\+ 14\\)\\)->ttl=0x40'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    lab.cleanup();
  }
});
