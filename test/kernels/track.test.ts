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
import { ATTACH_MS, BACKENDS, KERNEL, OBJECTS, ping, pktpathPrograms, since, traced } from './guest.js';
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

test(`${KERNEL}: --filter-track-skb-by-stackid: the skb a veth's XDP makes anew is followed to icmp_rcv; without it, not`,
  { skip: skip || (!since(5, 11) && 'no module BTF before 5.11: the veth\'s functions, where the new skb is made, cannot be probed') }, async () => {
  const by = await xdpCrossing(['--filter-track-skb-by-stackid']);
  // skb_copy_header(new, old): its skb argument is the new one, seen where the old one is in hand.
  const made = new Set(by.events.filter((e) => e.func === 'skb_copy_header').map((e) => e.skb));
  const arrived = by.events.filter((e) => e.func === 'icmp_rcv');
  assert.ok(made.size > 0, `no new skb seen made:\n${by.stderr}`);
  // B's echo replies are made on the stack where the new skb is in hand: they are taken up too, and reach A's icmp_rcv.
  const remade = arrived.filter((e) => made.has(e.skb));
  assert.ok(remade.length > 0, `icmp_rcv not in the new skbs (${[...made].join(', ')}): ` +
    `${by.events.map((e) => `${e.func} ${e.skb}`).join('\n')}\n${by.stderr}`);
  assert.match(by.stderr, /followed \d+ skbs \(.*\d+ taken up on a followed skb's kernel stack/);
  const only = await xdpCrossing(['--filter-track-skb']);
  assert.ok(only.events.some((e) => e.func === 'net_dev_start_xmit'), only.stderr);
  assert.equal(only.events.filter((e) => e.func === 'icmp_rcv').length, 0, 'the new skb followed without the stack');
  process.stdout.write(`# ${KERNEL}: ${remade.length} icmp_rcv events in the ${made.size} new skbs\n`);
});

/**
 * A packet socket of every protocol on B's veth: the receive path hands it
 * each packet shared with IP, and it takes a clone; it reads everything that
 * comes (ARP, requests, replies, in whatever order the emulated CPU makes
 * them) until a quiet while passes, so the followed clone is read wherever
 * it falls.
 */
const RECEIVER = 'import socket\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))\n' +
  's.bind(("veth-b", 0))\ns.settimeout(5)\nprint("ready", flush=True)\n' +
  'try:\n  for _ in range(256): s.recv(2048)\nexcept socket.timeout:\n  pass\n';

test(`${KERNEL}: --filter-track-skb: the clone made for a packet socket is followed (fexit on skb_clone) to where it is read`, { skip }, async () => {
  const { events, stderr } = await traced(['--filter-mark', MARK, '--filter-track-skb', '--attach', 'functions,tracepoints',
    '--filter-func', '^(ip_rcv|skb_copy_datagram_iovec|consume_skb)$'], async (lab, a, b) => {
    const receiver = lab.spawn(b, ['/usr/bin/python3', '-c', RECEIVER]);
    const done = new Promise<number | null>((resolve) => receiver.once('exit', resolve));
    await new Promise((resolve) => receiver.stdout!.once('data', resolve));
    await markedPing(lab, a);
    assert.equal(await done, 0);
  });
  assert.match(stderr, /clones and copies followed at the exit of skb_clone/);
  assert.match(stderr, /\d+ clones and copies seen made/);
  const received = new Set(events.filter((e) => e.func === 'ip_rcv').map((e) => e.skb));
  const read = events.filter((e) => e.func === 'skb_copy_datagram_iovec');
  assert.ok(received.size > 0 && read.length > 0, `no clone read by the socket:\n${stderr}`);
  for (const e of read) assert.ok(!received.has(e.skb), `the socket read ${e.skb}, the request itself, not a clone`);
  process.stdout.write(`# ${KERNEL}: ${read.length} clones read by the packet socket\n`);
});

test(`${KERNEL}: the flags that need fentry say so in one line where it is refused`, { skip: FENTRY ? 'fentry works here' : false }, async () => {
  const run = await startTracer(['--filter-non-skb-funcs', 'fib_table_lookup'], ATTACH_MS);
  const r = await run.stop();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^pktpath: --filter-non-skb-funcs: needs fentry and fexit .* which this kernel refuses/m);
  assert.equal(pktpathPrograms(), 0);
});
