/**
 * Trace lines as pktpath writes them (an event with every section, a header,
 * a lost record, a normalised header and packet), and the same with one field
 * wrong: what readers of traces must refuse, naming the field.
 */

/** An event with every section, as --output-json writes it (toJsonRecord of test/unit/show.test.ts's fullEvent). */
export const FULL_EVENT = {
  v: 1, time: '2026-11-27T05:30:00.123456789Z', skb: '0xffff8880045c3e00', cpu: 2, process: 'curl:4242', pid: 4242,
  netns: 4026531840, netns_name: '', mark: 0, iface: 'veth-cli:7', ifindex: 7, proto: 2048, mtu: 1500, len: 74,
  tuple: { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 43210, dport: 80, proto: 'tcp', flags: 'SYN' },
  tuple_before: { saddr: '192.0.2.1', daddr: '203.0.113.9', sport: 43210, dport: 8080, proto: 'tcp', flags: 'SYN' },
  func: 'net_dev_queue', probe: { type: 'tracepoint', name: 'net_dev_queue' }, drop_reason: null, caller: null,
  ct: {
    source: 'nfct', found: true, state: 'ESTABLISHED', dir: 'reply', id: '0xffff888100abcd00', status: ['SEEN_REPLY', 'CONFIRMED'],
    zone: 3, mark: 66, error: 0,
    orig: { saddr: '192.0.2.1', daddr: '203.0.113.9', sport: 40000, dport: 8080, proto: 'tcp' },
    reply: { saddr: '198.51.100.2', daddr: '192.0.2.1', sport: 80, dport: 40000, proto: 'tcp' },
  },
  verdict: {
    action: 'redirect', target: { kind: 'peer', direction: 'ingress', ifindex: 2, iface: 'eth0', netns: 4026532000, netns_name: 'pod-b' },
    by: [{ id: 412, name: 'cni_redirect' }], reason: null, inferred: true, evidence: 'next seen at tc:ingress of eth0@pod-b',
  },
  nft: { family: 'inet', table: 'filter', chain: 'input', handle: 7, rule: 'udp dport 9999 drop', kind: 'rule', verdict: 'drop', target: null, trace_id: 99 },
  tunnel: { kind: 'vxlan', vni: 42, inner: { saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 0, dport: 0, proto: 'icmp', flags: '' } },
  skb_metadata: { 'skb->hash': 2654435769, 'skb->sk': null, 'skb->tstamp': '1152921504606846976', 'skb->head[skb->mac_header:6]': { hex: '0200c0000201' } },
  skb_dump: { dev: 'eth0', skb: '(struct sk_buff){\n .len = (unsigned int)60,\n}', shared_info: null, cb: '00'.repeat(48) },
  stack: ['ip_rcv+0x1c', 'netif_receive_skb+0x20'],
  packet: { l2: true, orig_len: 60, data: 'AgAAAAACAgAAAAABCABFAAAcAAEAAEARAADAAAIBwAACAgTSADUACAAA' },
};

const { nft: _nft, ...withoutNft } = FULL_EVENT;

/** The same skb at a point of its path (FULL_EVENT's nft section makes it nftables' trace of it, not a hop). */
export const HOP_EVENT = { ...withoutNft, time: '2026-11-27T05:30:00.123450000Z' };

/** The same skb freed: its journey ends. */
export const FREE_EVENT = {
  ...withoutNft, time: '2026-11-27T05:30:00.123459999Z', func: 'consume_skb', probe: { type: 'tracepoint', name: 'consume_skb' },
};

export const HEADER = {
  v: 1, type: 'header', pktpath: '0.1.0', kernel: 'Linux 6.18.0 x86_64', time: '2026-11-27T05:29:59.000000000Z',
  argv: ['record', '--out', 't.jsonl'], command: ['ping', '-c1', '192.0.2.2'], points: ['net_dev_queue', 'consume_skb'], notes: [],
  namespaces: [{ inode: 4026531840, name: '', self: true }],
};

export const LOST = { v: 1, type: 'lost', time: '2026-11-27T05:30:01.000000000Z', count: 3, total: 3 };

/** A trace of one packet, every section in it. */
export const FULL_TRACE = () => [HEADER, HOP_EVENT, FULL_EVENT, FREE_EVENT];

export const NORMALIZED_HEADER = { v: 1, type: 'normalized', kernel: null, command: null, vars: ['ephemeral ports'], packets: 1, lost: 0 };

export const NORMALIZED_PACKET = {
  v: 1, type: 'packet', flow: 'tcp 192.0.2.1:$p1 > 192.0.2.2:80', dir: '>', flags: 'SYN', tuple: '192.0.2.1:$p1 > 192.0.2.2:80',
  hops: [{ at: 'net_dev_queue', netns: 'self', iface: 'veth-cli', ct: 'NEW' }], end: { how: 'ended' },
};

type Json = Record<string, unknown>;

/** A trace with one line wrong: its lines (a string is written as it is), and what a reader must say after `FILE:LINE: `. */
export interface LineCase {
  name: string;
  lines: () => Array<Json | string>;
  /** The line the reader names. */
  line: number;
  /** A normalised trace: `pktpath show` refuses it as one before it reads the line. */
  normalized?: true;
  message: RegExp;
}

/** A trace's text. */
export const traceText = (lines: Array<Json | string>) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';

const clone = <T>(v: T): T => structuredClone(v);

/** FULL_EVENT with `change` applied, then FREE_EVENT. */
function event(name: string, change: (e: Json) => void, message: RegExp): LineCase {
  return { name, lines: () => { const e = clone(FULL_EVENT) as Json; change(e); return [clone(HEADER), e, clone(FREE_EVENT)]; }, line: 2, message };
}

const at = (e: Json, path: string): Json => path.split('.').reduce((o, k) => o[k] as Json, e);

/** Every kind of wrong field seen to reach pktpath's internals before traces were checked against the schema, and more. */
export const FIELD_CASES: LineCase[] = [
  event('tuple.daddr a number', (e) => (at(e, 'tuple').daddr = 3221225986), /not an event: tuple\.daddr must be string$/),
  event('tuple.flags a number', (e) => (at(e, 'tuple').flags = 2), /not an event: tuple\.flags must be string$/),
  event('tuple.sport past 65535', (e) => (at(e, 'tuple').sport = 70000), /not an event: tuple\.sport must be <= 65535$/),
  event('tuple an array', (e) => (e.tuple = ['192.0.2.1']), /not an event: tuple must be object$/),
  event('tuple_before null', (e) => (e.tuple_before = null), /not an event: tuple_before must be object$/),
  event('ct.orig a string', (e) => (at(e, 'ct').orig = '192.0.2.1'), /not an event: ct\.orig must be object$/),
  event('ct.status a string', (e) => (at(e, 'ct').status = 'CONFIRMED'), /not an event: ct\.status must be array$/),
  event('ct.status of numbers', (e) => (at(e, 'ct').status = [8]), /not an event: ct\.status\[0\] must be string$/),
  event('ct.state unknown', (e) => (at(e, 'ct').state = 'HALF_OPEN'), /not an event: ct\.state must be one of "NEW", /),
  event('verdict.by a string', (e) => (at(e, 'verdict').by = 'cni_redirect'), /not an event: verdict\.by must be array$/),
  event('verdict.by of strings', (e) => (at(e, 'verdict').by = ['cni_redirect']), /not an event: verdict\.by\[0\] must be object$/),
  event('verdict.action a number', (e) => (at(e, 'verdict').action = 2), /not an event: verdict\.action must be one of "pass", /),
  event('verdict.target junk', (e) => (at(e, 'verdict').target = 'eth0'), /not an event: verdict\.target must be (null|object)$/),
  event('nft a string', (e) => (e.nft = 'drop'), /not an event: nft must be object$/),
  event('nft.handle a string', (e) => (at(e, 'nft').handle = '7'), /not an event: nft\.handle must be integer,null$/),
  event('skb_dump an array', (e) => (e.skb_dump = ['x']), /not an event: skb_dump must be object$/),
  event('skb_dump.cb not hex', (e) => (at(e, 'skb_dump').cb = 'zz'), /not an event: skb_dump\.cb must match pattern/),
  event('stack a string', (e) => (e.stack = 'ip_rcv'), /not an event: stack must be array$/),
  event('stack of objects', (e) => (e.stack = [{}]), /not an event: stack\[0\] must be string$/),
  event('packet.data a number', (e) => (at(e, 'packet').data = 5), /not an event: packet\.data must be string$/),
  event('packet.data not base64', (e) => (at(e, 'packet').data = '<html>'), /not an event: packet\.data must match pattern/),
  event('probe missing', (e) => delete e.probe, /not an event: probe is missing$/),
  event('probe.type unknown', (e) => (at(e, 'probe').type = 'uprobe'), /not an event: probe\.type must be one of "tracepoint", /),
  event('skb a number', (e) => (e.skb = 1e19), /not an event: skb must be string$/),
  event('skb not an address', (e) => (e.skb = '0xffff88800x'), /not an event: skb must match pattern/),
  event('time not a time', (e) => (e.time = 'yesterday'), /not an event: time must match pattern/),
  event('cpu negative', (e) => (e.cpu = -1), /not an event: cpu must be >= 0$/),
  event('netns a string', (e) => (e.netns = 'pod-a'), /not an event: netns must be integer$/),
  event('iface missing', (e) => delete e.iface, /not an event: iface is missing$/),
  event('tunnel.inner junk', (e) => (at(e, 'tunnel').inner = 1), /not an event: tunnel\.inner must be object$/),
  event('skb_metadata of objects', (e) => (e.skb_metadata = { 'skb->x': {} }), /not an event: skb_metadata\["skb->x"\] must be integer,string,null$/),
  event('a field pktpath does not write', (e) => (e['\u001b[2J'] = 1), /not an event: unknown field "(\x1b|\\x1b)\[2J"$/),
  {
    // JSON.parse takes it; JSON.stringify (and structuredClone) would overflow the stack: written as text.
    name: 'nested a hundred thousand deep', line: 2, message: /not an event: tuple must be object$/,
    lines: () => [clone(HEADER), JSON.stringify(FULL_EVENT).replace(/"tuple":\{[^}]*\}/, `"tuple":${'['.repeat(100_000)}${']'.repeat(100_000)}`), clone(FREE_EVENT)],
  },
  { name: 'a header with namespaces [null]', line: 1, lines: () => [{ ...clone(HEADER), namespaces: [null] }, clone(FULL_EVENT)], message: /not a header: namespaces\[0\] must be object$/ },
  { name: 'a header with a command of text', line: 1, lines: () => [{ ...clone(HEADER), command: 'ping' }, clone(FULL_EVENT)], message: /not a header: command must be array$/ },
  { name: 'a lost record without its count', line: 2, lines: () => [clone(FULL_EVENT), { ...LOST, count: 'three' }], message: /not a lost record: count must be integer$/ },
  { name: 'an unknown record type', line: 2, lines: () => [clone(FULL_EVENT), { v: 1, type: '\u001b]0;owned\u0007' }], message: /unknown record type "(\x1b|\\x1b)\]0;owned(\x07|\\x07)"$/ },
  { name: 'schema version 2', line: 1, lines: () => [{ ...clone(FULL_EVENT), v: 2 }], message: /schema version 2; this pktpath reads version 1$/ },
  { name: 'a JSON array', line: 1, lines: () => [[1, 2] as unknown as Json], message: /not a JSON object$/ },
  { name: 'a normalised hop without its point', normalized: true, line: 2, lines: () => [clone(NORMALIZED_HEADER), { ...clone(NORMALIZED_PACKET), hops: [{ at: 5, netns: 'self', iface: '' }] }], message: /not a normalised packet: hops\[0\]\.at must be string$/ },
  { name: 'a normalised packet ending oddly', normalized: true, line: 2, lines: () => [clone(NORMALIZED_HEADER), { ...clone(NORMALIZED_PACKET), end: { how: 'vanished' } }], message: /not a normalised packet: end\.how must be one of "dropped", "ended"$/ },
  { name: 'a normalised header counting in words', normalized: true, line: 1, lines: () => [{ ...clone(NORMALIZED_HEADER), packets: 'one' }, clone(NORMALIZED_PACKET)], message: /not a normalised header: packets must be integer$/ },
];

/** Lines in the wrong place, or not JSON lines at all. */
export const ORDER_CASES: LineCase[] = [
  { name: 'a second header', line: 2, lines: () => [clone(HEADER), clone(HEADER), clone(FULL_EVENT)], message: /a second header: a trace has one, on its first line/ },
  { name: 'a header after events', line: 2, lines: () => [clone(FULL_EVENT), clone(HEADER), clone(FREE_EVENT)], message: /a header after events: a trace's header is its first line$/ },
  { name: 'a header on the last line', line: 3, lines: () => [clone(FULL_EVENT), clone(FREE_EVENT), clone(HEADER)], message: /a header after events/ },
  { name: 'a header after a lost record', line: 2, lines: () => [clone(LOST), clone(HEADER), clone(FULL_EVENT)], message: /a header after other records/ },
  { name: 'a normalised header after packets', normalized: true, line: 3, lines: () => [clone(NORMALIZED_HEADER), clone(NORMALIZED_PACKET), clone(NORMALIZED_HEADER)], message: /a second header/ },
  { name: 'a truncated line', line: 2, lines: () => [clone(FULL_EVENT), JSON.stringify(FREE_EVENT).slice(0, 40)], message: /not JSON \(a truncated line\?\)$/ },
  { name: 'a NUL byte', line: 2, lines: () => [clone(FULL_EVENT), `{"v":1,\0"x":1}`], message: /not text: a NUL byte at column 8 \(a binary file, or UTF-16 without a byte-order mark\?\)$/ },
];
