/**
 * `pktpath explain` on real packets: each scenario records a trace of one
 * silent failure between namespaces the test makes (an nft rule, a tc
 * program, conntrack INVALID, no socket, a full socket buffer, a reply
 * dropped on its way back) and checks the first line explain prints; a
 * working ping, UDP and TCP exchange is told nothing.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNI, type CniNode, cniNode } from '../../src/lab/cni.js';
import { Lab } from '../../src/lab/lab.js';
import { root } from '../helpers/probe-btf.js';
import { waitNoPrograms } from '../helpers/tracer.js';
import { firstLine, inNs, pktpath, recordAndExplain as recordAndExplainIn } from '../helpers/explained.js';

const PEER = join(root, 'dist/src/lab/peer.js');
const lab = new Lab('ex30');
const cniLab = new Lab('ex30c');
// Addresses of their own: other tests use 192.0.2.1/.2 at the same time.
const A_ADDR = '203.0.113.71';
const B_ADDR = '203.0.113.72';
let A = '';
let B = '';
let node: CniNode;
const dir = mkdtempSync(join(tmpdir(), 'pktpath-explain-e2e-'));

before(async () => {
  A = lab.netns('a');
  B = lab.netns('b');
  lab.veth({ ns: A, ifname: 'veth-a', addrs: [`${A_ADDR}/24`] }, { ns: B, ifname: 'veth-b', addrs: [`${B_ADDR}/24`] });
  node = await cniNode(cniLab, { objects: join(root, 'probes/build'), nft: false });
});
after(() => {
  lab.cleanup();
  cniLab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

/** Records `shell` (run in the test's process namespace) with pktpath's `args`, then explains it. */
const recordAndExplain = (name: string, args: string[], shell: string) => recordAndExplainIn(dir, name, args, shell);
const udpSend = (ns: string, addr: string, port: number) => inNs(ns, `${process.execPath} ${PEER} udp-send ${addr} ${port} hello`);

/** The handle nft gave the one rule of `table inet ex30` in `ns`. */
function ruleHandle(ns: string): number {
  return Number(/# handle (\d+)\s*$/m.exec(lab.execSync(ns, ['nft', '-a', 'list', 'table', 'inet', 'ex30']).split('\n').filter((l) => /drop/.test(l)).join('\n'))![1]);
}

function withRule(ns: string, chain: string, rule: string): () => void {
  lab.nft(ns, `table inet ex30 {\n  chain ${chain} {\n    type filter hook ${chain} priority 0;\n    ${rule}\n  }\n}\n`);
  return () => lab.execSync(ns, ['nft', 'delete', 'table', 'inet', 'ex30']);
}

test('an nft rule drop: the rule by table, chain, handle and text', async () => {
  const remove = withRule(B, 'input', 'udp dport 47001 drop');
  try {
    const { text, json } = await recordAndExplain('nft', ['--output-nft', 'udp port 47001'], udpSend(A, B_ADDR, 47001));
    assert.equal(firstLine(text), `nft-drop: dropped by nft rule inet ex30 input #${ruleHandle(B)} "udp dport 47001 drop" in ${B}`);
    assert.equal(json[0]!['type'], 'explanation');
    assert.equal(json[0]!['flow'], `udp ${A_ADDR}:${(json[0]!['flow'] as string).split(':')[1]!.split(' ')[0]} > ${B_ADDR}:47001`);
  } finally {
    remove();
  }
});

test('conntrack INVALID dropped by a rule: a TCP segment with SYN and FIN', async () => {
  const remove = withRule(B, 'input', 'ct state invalid drop');
  // A raw socket sends what no TCP stack would: conntrack finds SYN|FIN invalid.
  const script = [
    'import socket,struct',
    `src,dst=socket.inet_aton("${A_ADDR}"),socket.inet_aton("${B_ADDR}")`,
    'h=struct.pack("!HHIIBBHHH",47002,47002,1,0,5<<4,0x03,1024,0,0)',
    'p=src+dst+struct.pack("!BBH",0,6,len(h))+h',
    's=sum(struct.unpack("!%dH"%(len(p)//2),p)); s=(s>>16)+(s&0xffff); s+=s>>16',
    'h=h[:16]+struct.pack("!H",~s&0xffff)+h[18:]',
    'socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_TCP).sendto(h,(socket.inet_ntoa(dst),0))',
  ].join('\n');
  try {
    const { text } = await recordAndExplain('ct-invalid', ['--output-nft', 'tcp port 47002'], inNs(A, `python3 -c '${script}'`));
    assert.equal(firstLine(text), `ct-invalid: dropped as conntrack INVALID by nft rule inet ex30 input #${ruleHandle(B)} "ct state invalid drop" in ${B}`);
  } finally {
    remove();
  }
});

test('no socket, and a socket whose receive buffer is full', async () => {
  // Recorded with --explain: the trace holds the explanation record after the journey; explain says the same from the events.
  const none = await recordAndExplain('no-socket', ['--explain', 'udp port 47003'], udpSend(A, B_ADDR, 47003));
  assert.equal(firstLine(none.text), `no-socket: no socket for udp port 47003 in ${B} (answered with ICMP port unreachable)`);
  const recorded = readFileSync(join(dir, 'no-socket.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const live = recorded.findIndex((r) => r['type'] === 'explanation');
  assert.ok(live > 0, 'no explanation record in the trace recorded with --explain');
  assert.deepEqual(recorded[live], none.json[0]);
  const freed = recorded.findIndex((r) => r['func'] === 'kfree_skb' && r['skb'] === recorded[live]!['skb']);
  assert.ok(freed >= 0 && freed < live, 'the explanation follows its journey');
  // For CI: a cause asked for fails the run; an unknown one is bad usage.
  const trace = join(dir, 'no-socket.jsonl');
  assert.equal((await pktpath(['explain', '--fail-on-cause', 'no-socket', trace])).code, 1);
  assert.equal((await pktpath(['explain', '--fail-on-cause', 'nft-drop,no-route', trace])).code, 0);
  const bad = await pktpath(['explain', '--fail-on-cause', 'nope', trace]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--fail-on-cause: 'nope' is no cause; one of any, nft-drop/);

  // A reader that binds a small buffer and then reads nothing for a while.
  const reader = lab.spawn(B, [process.execPath, '-e', [
    "const s=require('dgram').createSocket({type:'udp4',recvBufferSize:2048});",
    "s.bind(47004,()=>{console.log('ready');const end=Date.now()+30000;while(Date.now()<end);process.exit(0)})",
  ].join('')]);
  await new Promise((resolve) => reader.stdout!.once('data', resolve));
  const send = inNs(A, `${process.execPath} -e "const s=require('dgram').createSocket('udp4');let n=0;const b=Buffer.alloc(1000);` +
    `(function f(){if(n++>=40)return s.close();s.send(b,47004,'${B_ADDR}',f)})()"`);
  // pktpath takes seconds to attach: the reader still reads nothing when the datagrams come.
  const full = await recordAndExplain('socket-full', ['udp port 47004'], send).finally(() => reader.kill('SIGKILL'));
  assert.equal(firstLine(full.text), `socket-full: the socket of udp port 47004 in ${B} has its receive buffer full`);
});

test('a reply dropped on its way back: the request is told by its reply', async () => {
  const remove = withRule(A, 'input', 'icmp type echo-reply drop');
  try {
    const { text, json } = await recordAndExplain('reply', ['--output-nft', `icmp and host ${B_ADDR}`], `${inNs(A, `ping -c 1 -W 1 ${B_ADDR}`)} >/dev/null; true`);
    assert.equal(firstLine(text), `reply-dropped: the reply was dropped: dropped by nft rule inet ex30 input #${ruleHandle(A)} "icmp type echo-reply drop" in ${A}`);
    assert.deepEqual(json.map((e) => e['cause']), ['reply-dropped', 'nft-drop']);
  } finally {
    remove();
  }
});

test('a tc program\'s drop, by name', async () => {
  const send = `ip netns exec ${node.podB} bash -c 'echo x > /dev/udp/${CNI.podA.addr}/${CNI.tcDroppedPort}'`;
  const { text } = await recordAndExplain('tc', ['--filter-netns', node.host, `udp port ${CNI.tcDroppedPort}`], send);
  assert.equal(firstLine(text), `tc-drop: dropped by tc program cni_policy#${node.policyId} at tc:ingress of lxc-b in ${node.host} (TC_INGRESS)`);
});

test('a tc program\'s redirect into a device that does not take it', async () => {
  // Pod B's eth0 down: cni_redirect still sends pod A's packets for pod B into it, and the kernel frees them there.
  cniLab.execSync(node.podB, ['ip', 'link', 'set', 'eth0', 'down']);
  try {
    const send = `ip netns exec ${node.podA} ping -c 1 -W 1 ${CNI.podB.addr} >/dev/null; true`;
    const { text } = await recordAndExplain('redirect', ['--filter-netns', node.host, `icmp and host ${CNI.podB.addr}`], send);
    assert.equal(firstLine(text), `tc-redirect: redirected by cni_redirect#${node.redirectId} at tc ingress of lxc-a in ${node.host}, ` +
      'but the redirect failed: freed in skb_do_redirect (its target is down, gone or cannot take it)');
  } finally {
    cniLab.execSync(node.podB, ['ip', 'link', 'set', 'eth0', 'up']);
  }
});

test('no false causes: a working ping, UDP datagram and TCP exchange are told nothing', async () => {
  const servers = [lab.spawn(B, [process.execPath, PEER, 'udp-serve', '47005']), lab.spawn(B, [process.execPath, PEER, 'tcp-serve', '47006'])];
  await Promise.all(servers.map((s) => new Promise((resolve) => s.stdout!.once('data', resolve))));
  const traffic = [
    `${inNs(A, `ping -c 2 -i 0.2 -W 1 ${B_ADDR}`)} >/dev/null`, udpSend(A, B_ADDR, 47005),
    inNs(A, `${process.execPath} ${PEER} tcp-connect ${B_ADDR} 47006 hello`),
  ].join(' && ');
  const { text, json } = await recordAndExplain('working', [`host ${B_ADDR}`], traffic);
  assert.deepEqual(json, [], text);
  assert.match(text, /^nothing to explain/);
  const trace = readFileSync(join(dir, 'working.jsonl'), 'utf8');
  assert.ok(trace.split('\n').length > 50, 'the working exchange was traced');
});
