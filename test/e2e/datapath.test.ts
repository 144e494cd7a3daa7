/**
 * The datapath explained, on a CNI-style node (src/lab/cni.ts): a host and
 * two pods, a bpf_redirect_peer program on a tcx link, a policy program
 * loaded with `tc filter add … bpf da obj …`, nft rules in the host. pktpath
 * runs inside the host namespace, so it observes only what the test made.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNI, type CniNode, attachMonitor, cniNode } from '../../src/lab/cni.js';
import { Lab } from '../../src/lab/lab.js';
import { root } from '../helpers/probe-btf.js';
import { validateDatapath } from '../helpers/schema.js';
import { type JsonEvent, PKTPATH, runPktpath, startTracer, waitNoPrograms } from '../helpers/tracer.js';

const lab = new Lab(`ppdp${process.pid % 10000}`);
let node: CniNode;
const inHost = () => ['ip', 'netns', 'exec', node.host];

before(async () => {
  node = await cniNode(lab, { objects: join(root, 'probes/build') });
  // A port forward for the DNAT case: pod B → 203.0.113.10:5353 lands on pod A's 7777.
  // A rule as kube-proxy's iptables-nft writes them: nft's own tracing shows it like any other.
  lab.execSync(node.host, ['iptables', '-A', 'FORWARD', '-p', 'udp', '--dport', '7100', '-j', 'DROP']);
  lab.nft(node.host, `table ip cninat {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    ip daddr 203.0.113.10 udp dport 5353 dnat to ${CNI.podA.addr}:7777 comment "cni: service 5353"
  }
}
`);
});
after(async () => {
  lab.cleanup();
  await waitNoPrograms();
});

function udp(from: string, to: string, port: number): void {
  lab.execSync(from, ['bash', '-c', `echo x > /dev/udp/${to}/${port}`]);
}

function nftTables(ns: string): string[] {
  return lab.execSync(ns, ['nft', 'list', 'tables']).split('\n').filter(Boolean);
}

/** Every event of one skb, in order, from its first event matching `first`. */
function journey(events: JsonEvent[], first: (e: JsonEvent) => boolean): JsonEvent[] {
  const start = events.findIndex(first);
  assert.ok(start >= 0, 'no event starts the journey');
  const skb = events[start]!.skb;
  const out: JsonEvent[] = [];
  for (const e of events.slice(start)) {
    if (e.skb !== skb) continue;
    out.push(e);
    if (e.func === 'kfree_skb' || e.func === 'consume_skb') break;
  }
  return out;
}

describe('foreign tc programs', () => {
  test('a peer redirect: ping works, and the request\'s hop says redirect (peer) into pod B, by which program', async () => {
    const tracer = await startTracer(['--filter-dst-ip', CNI.podB.addr, '--filter-proto', 'icmp'], 30_000, inHost());
    const ping = lab.execSync(node.podA, ['ping', '-c', '3', '-i', '0.2', '-W', '1', CNI.podB.addr]);
    const { code, events, stderr } = await tracer.stop();
    assert.equal(code, 0, stderr);
    assert.match(ping, /3 received/, 'the redirect still delivers every request: pktpath changes no verdict');
    assert.match(stderr, /first in the chain too at 1 hook/);
    const hops = journey(events, (e) => e.func === 'tc:ingress' && e.iface.startsWith('lxc-a'));
    const redirect = hops[0]!.verdict!;
    assert.equal(redirect.action, 'redirect');
    assert.equal(redirect.target?.kind, 'peer');
    assert.equal(redirect.target?.iface, 'eth0');
    assert.equal(redirect.target?.netns_name, node.podB);
    assert.deepEqual(redirect.by, [{ id: node.redirectId, name: 'cni_redirect' }]);
    assert.equal(redirect.inferred, true);
    // Straight into the pod: its next hop is pod B's tc ingress, no transmit between.
    assert.equal(hops[1]!.func, 'tc:ingress');
    assert.equal(hops[1]!.netns_name, node.podB);
    assert.ok(hops.every((e) => e.func !== 'net_dev_queue' || e.netns_name !== node.host), 'no transmit in the host');
    // pktpath's last observer at lxc-a never saw it: no second tc:ingress on lxc-a.
    assert.equal(hops.filter((e) => e.func === 'tc:ingress' && e.iface.startsWith('lxc-a')).length, 1);
  });

  test('a tc program that drops UDP to one port: the drop is at its hook, with its name; other traffic passes', async () => {
    const tracer = await startTracer(['--filter-proto', 'udp', '--filter-src-ip', CNI.podB.addr], 30_000, inHost());
    udp(node.podB, CNI.podA.addr, CNI.tcDroppedPort);
    udp(node.podB, CNI.podA.addr, 7777);
    const { events } = await tracer.stop();
    const atPolicy = events.filter((e) => e.func === 'tc:ingress' && e.iface.startsWith('lxc-b'));
    const dropped = atPolicy.find((e) => e.tuple?.dport === CNI.tcDroppedPort)!;
    const passed = atPolicy.find((e) => e.tuple?.dport === 7777)!;
    assert.equal(dropped.verdict?.action, 'drop');
    assert.equal(dropped.verdict?.reason, 'TC_INGRESS');
    assert.deepEqual(dropped.verdict?.by, [{ id: node.policyId, name: 'cni_policy' }]);
    assert.equal(passed.verdict?.action, 'pass');
    assert.ok(events.some((e) => e.tuple?.dport === 7777 && e.netns_name === node.podA), 'the other datagram reaches pod A');
    assert.ok(!events.some((e) => e.tuple?.dport === CNI.tcDroppedPort && e.netns_name === node.podA));
  });
});

test('a program attached in front of pktpath\'s first observer later: pktpath goes first again, and names both', async () => {
  const tracer = await startTracer(['--filter-dst-ip', CNI.podB.addr, '--filter-proto', 'icmp'], 30_000, inHost());
  const monitor = await attachMonitor(lab, node, join(root, 'probes/build'));
  after(() => monitor.detach());
  // A topology tick sees the chain's new revision.
  await new Promise((r) => setTimeout(r, 1000));
  const inv = JSON.parse(execFileSync('ip', [...inHost().slice(1), process.execPath, PKTPATH, 'datapath', '--json'], { encoding: 'utf8' })) as {
    namespaces: Array<{ netns: { name: string }; devices: Array<{ name: string; tc: { ingress: { tcx: Array<{ id: number; name: string; own: boolean }> } } }> }>;
  };
  const chain = inv.namespaces.find((n) => n.netns.name === node.host)!.devices.find((d) => d.name === 'lxc-a')!.tc.ingress.tcx;
  assert.equal(chain.length, 4, JSON.stringify(chain));
  assert.equal(chain[0]!.own, true, 'pktpath first again');
  assert.equal(chain[3]!.own, true, 'and last');
  assert.deepEqual(chain.slice(1, 3).map((p) => p.name).sort(), ['cni_monitor', 'cni_redirect']);
  lab.execSync(node.podA, ['ping', '-c', '1', '-W', '1', CNI.podB.addr]);
  const { events } = await tracer.stop();
  const hop = events.find((e) => e.func === 'tc:ingress' && e.iface.startsWith('lxc-a'))!;
  assert.equal(hop.verdict?.target?.kind, 'peer');
  assert.deepEqual(hop.verdict!.by.map((p) => p.id).sort((a, b) => a - b), [node.redirectId, monitor.id].sort((a, b) => a - b));
  monitor.detach();
});

test('--tc-devices programs: tc observers only where the CNI\'s programs run, and at a device once a program is attached there', async () => {
  const tracer = await startTracer(['--tc-devices', 'programs', '--filter-proto', 'icmp'], 30_000, inHost());
  lab.execSync(node.podA, ['ping', '-c', '1', '-W', '1', CNI.podB.addr]);
  const monitor = await attachMonitor(lab, node, join(root, 'probes/build'), 'lo');
  after(() => monitor.detach());
  // A topology tick sees the program on lo and puts observers there.
  await new Promise((r) => setTimeout(r, 1000));
  lab.execSync(node.host, ['ping', '-c', '1', '-W', '1', '127.0.0.1']);
  const { code, events, stderr } = await tracer.stop();
  monitor.detach();
  assert.equal(code, 0, stderr);
  assert.match(stderr, /tc: observed at the 2 devices where other tc programs run; the \d+ others/);
  assert.match(stderr, /tc on 2 devices \(not on \d+ without tc programs\)/);
  assert.match(stderr, /tc programs appeared: tc on lo \(netns /);
  const tcAt = new Set(events.filter((e) => e.func.startsWith('tc:')).map((e) => `${e.netns_name}/${e.iface.split(':')[0]}`));
  assert.deepEqual([...tcAt].sort(), [`${node.host}/lo`, `${node.host}/lxc-a`, `${node.host}/lxc-b`].sort());
  // The pods' devices are still seen, at the device tracepoints and netfilter.
  assert.ok(events.some((e) => e.netns_name === node.podB && e.iface.startsWith('eth0')), 'pod B\'s eth0 seen');
  assert.ok(events.some((e) => e.func === 'tc:ingress' && e.iface.startsWith('lo') && e.verdict?.by.some((p) => p.id === monitor.id)),
    'lo observed first and last around the monitor');
});

describe('--output-nft', () => {
  test('a drop by a named rule, the rules of an accepted path, and DNAT show at their hooks', async () => {
    const tracer = await startTracer(['--filter-proto', 'udp', '--output-nft'], 30_000, inHost());
    const table = nftTables(node.host).find((t) => /^table inet pktpath_trace_\d+$/.test(t))!;
    assert.ok(table, 'the trace table is there while tracing');
    // nft reads pktpath's rules back as what they were meant to be: only the mark, only for the filter's packets.
    const listed = lab.execSync(node.host, ['nft', '-y', 'list', ...table.split(' ')]);
    assert.match(listed, /flags owner/);
    assert.equal((listed.match(/type filter hook (prerouting|output) priority -2147483648; policy accept;/g) ?? []).length, 2);
    assert.equal((listed.match(/^\s+meta l4proto udp meta nftrace set 1 comment "pktpath --output-nft"$/gm) ?? []).length, 2, listed);
    udp(node.podB, CNI.podA.addr, CNI.nftDroppedPort);
    udp(node.podB, CNI.podA.addr, 7777);
    udp(node.podB, '203.0.113.10', 5353);
    udp(node.podB, CNI.podA.addr, 7100);
    await new Promise((r) => setTimeout(r, 300));
    const { code, events, stderr } = await tracer.stop();
    assert.equal(code, 0, stderr);
    const nft = events.filter((e) => e.probe.type === 'nft');
    const drop = nft.find((e) => e.nft?.verdict === 'drop')!;
    assert.ok(drop, `no nft drop among ${nft.length} nft events`);
    assert.equal(drop.func, 'nf:ipv4:forward');
    assert.equal(drop.nft!.table, 'cni');
    assert.equal(drop.nft!.chain, 'forward');
    assert.ok(drop.nft!.handle! > 0);
    assert.match(drop.nft!.rule!, new RegExp(`udp dport ${CNI.nftDroppedPort} counter drop comment "${CNI.nftComment}"`));
    assert.equal(drop.tuple?.dport, CNI.nftDroppedPort);
    // Tied to the skb it judged: the same skb is freed with NETFILTER_DROP.
    assert.ok(events.some((e) => e.skb === drop.skb && e.func === 'kfree_skb' && e.drop_reason === 'NETFILTER_DROP'));
    // The accepted datagram: the forward chain's policy let it through.
    assert.ok(nft.some((e) => e.tuple?.dport === 7777 && e.nft?.kind === 'policy' && e.nft.chain === 'forward' && e.nft.verdict === 'accept'));
    // DNAT: the nat rule at pre_routing, with its text.
    const dnat = nft.find((e) => e.nft?.table === 'cninat' && e.nft.kind === 'rule')!;
    assert.ok(dnat, 'no evaluation of the nat rule');
    assert.equal(dnat.func, 'nf:ipv4:pre_routing');
    assert.match(dnat.nft!.rule!, /dnat to 192\.0\.2\.10:7777 comment "cni: service 5353"/);
    assert.equal(dnat.tuple?.daddr, '203.0.113.10');
    // iptables-nft: the table and chain iptables made, its rule as nft reads it.
    const ipt = nft.find((e) => e.nft?.family === 'ip' && e.nft.table === 'filter' && e.nft.verdict === 'drop')!;
    assert.ok(ipt, 'no evaluation of the iptables rule');
    assert.equal(ipt.nft!.chain, 'FORWARD');
    assert.match(ipt.nft!.rule!, /udp dport 7100 .*drop/);
    assert.equal(ipt.func, 'nf:ipv4:forward');
    // pktpath's own table does not show, and is gone after exit: in every namespace.
    assert.ok(!nft.some((e) => e.nft!.table.startsWith('pktpath_trace_')));
    for (const ns of [node.host, node.podA, node.podB]) assert.deepEqual(nftTables(ns).filter((t) => t.includes('pktpath_trace_')), [], ns);
  });

  test('after SIGKILL no trace table remains; a stale one (a kernel without owner tables) goes at the next start and with cleanup', async () => {
    const child = spawn('ip', [...inHost().slice(1), process.execPath, PKTPATH, '--output-nft', '--filter-proto', 'udp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    for (let i = 0; i < 300 && !/attached/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(err, /attached/);
    assert.ok(nftTables(node.podA).some((t) => t.includes('pktpath_trace_')));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    for (let i = 0; i < 20 && [node.host, node.podA, node.podB].some((ns) => nftTables(ns).some((t) => t.includes('pktpath_trace_'))); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const ns of [node.host, node.podA, node.podB]) assert.deepEqual(nftTables(ns).filter((t) => t.includes('pktpath_trace_')), [], ns);

    // What a kernel without owner tables would leave: a table of a session that is gone.
    const stale = 'pktpath_trace_4000000';
    lab.nft(node.podA, `table inet ${stale} {\n}\n`);
    const tracer = await startTracer(['--output-nft', '--filter-proto', 'udp'], 30_000, inHost());
    const { stderr } = await tracer.stop();
    assert.match(stderr, new RegExp(`removed stale nft table ${stale}`));
    lab.nft(node.podB, `table inet ${stale} {\n}\n`);
    const r = runPktpath(['cleanup'], { prefix: inHost() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(nftTables(node.podB).filter((t) => t.includes('pktpath_trace_')), []);
  });
});

test('a namespace with a veth created 2 s after the start is traced', async () => {
  const tracer = await startTracer(['--filter-dst-ip', '203.0.113.2', '--filter-proto', 'icmp'], 30_000, inHost());
  await new Promise((r) => setTimeout(r, 2000));
  const late = lab.netns('late-a');
  const lateB = lab.netns('late-b');
  lab.veth({ ns: late, ifname: 'late0', addrs: ['203.0.113.1/24'] }, { ns: lateB, ifname: 'late1', addrs: ['203.0.113.2/24'] });
  // Within a second the new namespaces and devices have their observers.
  await new Promise((r) => setTimeout(r, 1000));
  lab.execSync(late, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '203.0.113.2']);
  const { events, stderr } = await tracer.stop();
  assert.match(stderr, new RegExp(`netns ${late} appeared`));
  const inLate = events.filter((e) => e.netns_name === late || e.netns_name === lateB);
  assert.ok(inLate.some((e) => e.func === 'tc:egress' && e.iface.startsWith('late0')), 'tc egress in the new namespace');
  assert.ok(inLate.some((e) => e.func === 'tc:ingress' && e.iface.startsWith('late1')), 'tc ingress in the other one');
  assert.ok(inLate.some((e) => e.func === 'nf:ipv4:local_in' && e.netns_name === lateB), 'netfilter in the new namespace');
  assert.match(stderr, /while tracing: namespaces \+2/);
});

test('a device added, renamed and removed in a traced namespace while tracing: observed, then released', async () => {
  const tracer = await startTracer(['--filter-proto', 'icmp'], 30_000, inHost());
  const step = async (cmd: string[]) => {
    lab.execSync(node.host, ['ip', 'link', ...cmd]);
    await new Promise((r) => setTimeout(r, 1000));
  };
  try {
    await step(['add', 'ppdev0', 'type', 'veth', 'peer', 'name', 'ppdev0p']);
    await step(['set', 'ppdev0', 'name', 'ppdev1']);
    await step(['del', 'ppdev1']);
  } finally {
    const { code, stderr } = await tracer.stop();
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`device appeared: tc on ppdev0 \\(netns ${node.host}\\)`));
    assert.match(stderr, /while tracing: namespaces \+\d+ -\d+, devices \+2 -2;/);
  }
});

test('a recorded trace normalises with the verdicts and the nft rules on its hops', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-cni-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'trace.jsonl');
  const record = runPktpath(['record', '--out', out, '--output-nft', '--filter-ip', CNI.podA.addr, '--',
    'bash', '-c', `ip netns exec ${node.podA} ping -c 1 -W 1 ${CNI.podB.addr}; ip netns exec ${node.podB} bash -c 'echo x > /dev/udp/${CNI.podA.addr}/${CNI.nftDroppedPort}'`],
  { prefix: inHost() });
  assert.equal(record.code, 0, record.stderr);
  const norm = runPktpath(['normalize', out, '--text']);
  assert.equal(norm.code, 0, norm.stderr);
  assert.match(norm.stdout, /tc:ingress \S+\/lxc-a REDIRECT peer → eth0@\S+ by cni_redirect/);
  assert.match(norm.stdout, /tc:ingress \S+\/lxc-b PASS by cni_policy/);
  assert.match(norm.stdout, /nf:ipv4:forward \S+\/lxc-b nft inet cni forward "udp dport 8888 counter drop comment \\"cni: block udp 8888\\"" → DROP/);
});

test('the inventory lists the foreign programs and chains of each namespace (JSON, by its schema)', () => {
  const out = execFileSync('ip', [...inHost().slice(1), process.execPath, PKTPATH, 'datapath', '--json'], { encoding: 'utf8' });
  const inv = JSON.parse(out) as {
    namespaces: Array<{ netns: { name: string }; devices: Array<{ name: string; tc: Record<string, { tcx: Array<{ id: number; name: string; own: boolean }>; legacy: Array<{ id: number; name: string; directAction: boolean }> }> }>;
      nft: { baseChains: Array<{ table: string; name: string; hook: string; priority: number }> } | null }>;
  };
  assert.equal(validateDatapath(inv), null);
  const host = inv.namespaces.find((n) => n.netns.name === node.host)!;
  const lxcA = host.devices.find((d) => d.name === 'lxc-a')!;
  const lxcB = host.devices.find((d) => d.name === 'lxc-b')!;
  assert.deepEqual(lxcA.tc.ingress!.tcx.map((p) => [p.id, p.name, p.own]), [[node.redirectId, 'cni_redirect', false]]);
  assert.deepEqual(lxcB.tc.ingress!.legacy.map((p) => [p.id, p.name, p.directAction]), [[node.policyId, 'cni_policy', true]]);
  assert.deepEqual(host.nft!.baseChains.map((c) => `${c.table}/${c.name}/${c.hook}/${c.priority}`).sort(),
    ['cni/forward/forward/0', 'cninat/prerouting/prerouting/-100', 'filter/FORWARD/forward/0']);
  for (const pod of [node.podA, node.podB]) assert.ok(inv.namespaces.some((n) => n.netns.name === pod), pod);
  const text = execFileSync('ip', [...inHost().slice(1), process.execPath, PKTPATH, 'datapath'], { encoding: 'utf8' });
  assert.match(text, new RegExp(`tc ingress tcx\\[0\\]: cni_redirect#${node.redirectId} sched_cls`));
  assert.match(text, new RegExp(`tc ingress clsact pref \\d+ handle 0x1: cni_policy#${node.policyId}`));
});
