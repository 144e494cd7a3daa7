/**
 * What pktpath follows beyond the matched skb, on real packets in a stock
 * kernel (scripts/test-kernels.sh): functions without an skb in the window of
 * a wanted skb's function (--filter-non-skb-funcs), an skb the kernel makes
 * anew on the same stack (--filter-track-skb-by-stackid: a veth's XDP copies
 * a packet into a new skb), and a clone made for a packet socket
 * (--filter-track-skb, fexit on skb_clone). Each needs fentry and fexit, or
 * says in one line what the kernel refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../src/lab/lab.js';
import { ATTACH_MS, BACKENDS, KERNEL, OBJECTS, ping, pktpathPrograms, traced } from './guest.js';
import { startTracer } from '../helpers/tracer.js';

const FENTRY = BACKENDS.includes('fentry');
const skip = FENTRY ? false : `this kernel refuses fentry (${KERNEL})`;
/** The echo requests carry this mark from A (ping -m); the veth clears it as it crosses into B. */
const MARK = '7';
const markedPing = async (lab: Lab, a: string) => {
  await lab.exec(a, ['ping', '-c', '2', '-i', '0.3', '-W', '2', '-m', MARK, '192.0.2.2']);
};

test(`${KERNEL}: --filter-non-skb-funcs: fib_table_lookup, which takes no skb, reported under the echo request it routes`, { skip }, async () => {
  const { events, stderr } = await traced(['--attach', 'functions', '--filter-func', '^(ip_rcv|icmp_rcv)$',
    '--filter-non-skb-funcs', 'fib_table_lookup'], ping);
  assert.match(stderr, /--filter-non-skb-funcs: 1 functions without an skb \(fib_table_lookup\), reported in the window of 2 skb functions/);
  const requests = new Set(events.filter((e) => e.func === 'ip_rcv' || e.func === 'icmp_rcv').map((e) => e.skb));
  const lookups = events.filter((e) => e.func === 'fib_table_lookup');
  assert.ok(lookups.length > 0, `no fib_table_lookup under a request:\n${stderr}`);
  // Each is tied to an echo request the filter wanted (the route of B's input, and of its reply).
  for (const e of lookups) assert.ok(requests.has(e.skb), `fib_table_lookup tied to ${e.skb}, not a request (${[...requests].join(', ')})`);
  process.stdout.write(`# ${KERNEL}: ${lookups.length} fib_table_lookup calls under ${requests.size} requests\n`);
});

/**
 * B's veth runs an XDP program in native mode: a veth gives XDP a packet
 * with room in front of it, so it copies each into a new skb (the old one is
 * consumed). The requests are wanted by their mark, which the veth cleared:
 * only the stack they share says the new skb is the request.
 */
async function xdpCrossing(follow: string[]) {
  return traced(['--filter-mark', MARK, ...follow, '--attach', 'functions,tracepoints',
    // veth_xdp_rcv_skb holds the request on the stack where skb_copy_header first sees the new skb.
    '--kmods', 'veth', '--filter-func', '^(veth_xdp_rcv_skb|skb_copy_header|ip_rcv|icmp_rcv|net_dev_start_xmit|consume_skb|kfree_skb)$'], async (lab, a, b) => {
    lab.execSync(b, ['ip', 'link', 'set', 'dev', 'veth-b', 'xdpdrv', 'obj', `${OBJECTS}/xdp_policy.bpf.o`, 'sec', 'xdp']);
    await markedPing(lab, a);
  });
}

test(`${KERNEL}: --filter-track-skb-by-stackid: the skb a veth's XDP makes anew is followed to icmp_rcv; without it, not`, { skip }, async () => {
  const by = await xdpCrossing(['--filter-track-skb-by-stackid']);
  const sent = new Set(by.events.filter((e) => e.func === 'net_dev_start_xmit').map((e) => e.skb));
  const arrived = by.events.filter((e) => e.func === 'icmp_rcv');
  assert.ok(sent.size > 0, `no request sent:\n${by.stderr}`);
  assert.ok(arrived.length > 0, `no request followed to icmp_rcv:\n${by.stderr}`);
  for (const e of arrived) assert.ok(!sent.has(e.skb), `icmp_rcv's skb ${e.skb} is the one sent: XDP made no new skb`);
  assert.match(by.stderr, /followed \d+ skbs \(.*\d+ taken up on a followed skb's kernel stack/);
  const only = await xdpCrossing(['--filter-track-skb']);
  assert.ok(only.events.some((e) => e.func === 'net_dev_start_xmit'), only.stderr);
  assert.equal(only.events.filter((e) => e.func === 'icmp_rcv').length, 0, 'the new skb followed without the stack');
  process.stdout.write(`# ${KERNEL}: ${arrived.length} requests at icmp_rcv in new skbs (sent as ${[...sent].join(', ')})\n`);
});

/** A packet socket in B: the receive path clones each packet for it (it is shared), and recvfrom copies it out. */
const RECEIVER = 'import socket\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))\n' +
  's.bind(("veth-b", 0))\ns.settimeout(15)\nfor _ in range(4): s.recv(2048)\n';

test(`${KERNEL}: --filter-track-skb: the clone made for a packet socket is followed (fexit on skb_clone) to where it is read`, { skip }, async () => {
  const { events, stderr } = await traced(['--filter-mark', MARK, '--filter-track-skb', '--attach', 'functions,tracepoints',
    '--filter-func', '^(ip_rcv|skb_copy_datagram_iovec|consume_skb)$'], async (lab, a, b) => {
    const receiver = lab.exec(b, ['/usr/bin/python3', '-c', RECEIVER], 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    await markedPing(lab, a);
    const r = await receiver;
    assert.equal(r.code, 0, r.stderr);
  });
  assert.match(stderr, /clones and copies followed at the exit of skb_clone/);
  assert.match(stderr, /\d+ clones and copies seen made/);
  const received = new Set(events.filter((e) => e.func === 'ip_rcv').map((e) => e.skb));
  const read = events.filter((e) => e.func === 'skb_copy_datagram_iovec');
  assert.ok(read.length > 0, `no clone read by the socket:\n${stderr}`);
  for (const e of read) assert.ok(!received.has(e.skb), `the socket read ${e.skb}, the request itself, not a clone`);
});

test(`${KERNEL}: the flags that need fentry say so in one line where it is refused`, { skip: FENTRY ? 'fentry works here' : false }, async () => {
  const run = await startTracer(['--filter-non-skb-funcs', 'fib_table_lookup'], ATTACH_MS);
  const r = await run.stop();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^pktpath: --filter-non-skb-funcs: needs fentry and fexit .* which this kernel refuses/m);
  assert.equal(pktpathPrograms(), 0);
});
