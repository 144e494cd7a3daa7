/**
 * The end-to-end scenarios run inside each stock kernel (scripts/test-kernels.sh):
 * a ping between two namespaces, traced with each function backend the kernel
 * allows, and the tc, netfilter and conntrack points the kernel can show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { linkInfos } from '../../src/bpf/loaded.js';
import { CNI, cniNode } from '../../src/lab/cni.js';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { capability, has } from '../../src/kernel/caps.js';
import { PKTPATH, startTracer } from '../helpers/tracer.js';
import { ATTACH_MS, BACKENDS, KERNEL, OBJECTS, ping, pktpathPrograms, since, traced } from './guest.js';

/**
 * The echo request's way out of A and into B, in the order the kernel meets
 * these functions (dev_queue_xmit is an inline wrapper of __dev_queue_xmit
 * on newer kernels: either stands for the step).
 */
const STEPS = [['__ip_local_out'], ['ip_output'], ['dev_queue_xmit', '__dev_queue_xmit'], ['ip_rcv'], ['ip_local_deliver'], ['icmp_rcv']];
const FUNCS = `^(${STEPS.flat().join('|')})$`;
/** A set of functions for timing fentry, which loads (verifies) one program per function. */
const FENTRY_SET = '^(ip|icmp)_(rcv|local|output|finish|send|push)';
/**
 * Without kprobe-multi each function is a kprobe of its own, registered one by one: under
 * emulation a thousand take longer than a test waits (5.10: over 4 minutes), so those
 * kernels attach the IPv4 path's ~110 (its devices, IP, ICMP and UDP functions).
 */
const KPROBE_SET = '^(__)?(ip|icmp|udp|netif|dev)_';
const KPROBE_MULTI = BACKENDS.includes('kprobe-multi');
const HAS_TCX = has('tcx-attach-type');

/** What the kernel gained in which release: doctor's row for it must say so on kernels before. */
const ADDED: [label: string, major: number, minor: number][] = [
  ['module BTF (skb functions of modules)', 5, 11], ['helper bpf_get_func_ip (return values)', 5, 15], ['kprobe-multi', 5, 18],
  ['kfunc bpf_skb_ct_lookup (conntrack)', 5, 18], ['netfilter links', 6, 4], ['tcx (tc links)', 6, 6]];

test(`${KERNEL}: doctor runs, and names what this kernel refuses`, () => {
  const out = execFileSync(process.execPath, [PKTPATH, 'doctor'], { encoding: 'utf8' });
  process.stdout.write(`# ${out.split('\n').filter((l) => /^pktpath will use|^skb functions|loads, reduced/.test(l)).join('\n# ')}\n`);
  for (const [label, major, minor] of ADDED) {
    if (since(major, minor)) continue;
    const row = new RegExp(`│ ${label.replace(/[()]/g, '\\$&')}\\s*│ (\\S+)\\s*│ (.*?)\\s*│`).exec(out);
    assert.ok(row && row[1] !== 'yes' && row[2] !== '', `doctor's ${label}: ${row?.[0] ?? 'no row'}`);
    process.stdout.write(`# ${KERNEL}: doctor: ${label}: ${row[1]} (${row[2]})\n`);
  }
  if (!since(5, 15)) assert.doesNotMatch(out, /pktpath will use: .*return values/);
});

test(`${KERNEL}: the capability model tries packet bytes read in place, and finds what the release says (6.17+)`, () => {
  assert.equal(has('direct-packet-loads'), since(6, 17), capability('direct-packet-loads').detail);
});

for (const backend of BACKENDS) {
  test(`${KERNEL}: ${backend}: a ping's skb functions in order, filtered like the tracepoints`, async () => {
    const { events, stderr } = await traced(['--backend', backend, '--filter-func', FUNCS, '--attach', 'functions,tracepoints'], ping);
    const funcs = events.filter((e) => e.probe.type === (backend === 'fentry' ? 'fentry' : 'kprobe'));
    assert.ok(funcs.length > 0, `no function events:\n${stderr}`);
    // Only what the filter allows: every event is an echo request to B.
    for (const e of events) assert.equal(e.tuple?.daddr, '192.0.2.2', JSON.stringify(e));
    // One skb's functions, in order (the request crosses the veth as the same skb).
    const first = funcs[0]!.skb;
    const path = funcs.filter((e) => e.skb === first).map((e) => e.func);
    let at = -1;
    for (const step of STEPS) {
      const i = path.findIndex((f, j) => j > at && step.includes(f));
      assert.ok(i > at, `${step.join('/')} missing or out of order in ${path.join(' → ')}`);
      at = i;
    }
    // The kprobes know their caller.
    if (backend !== 'fentry') assert.ok(funcs.some((e) => e.caller), 'no caller on kprobe events');
  });

  const subset = backend === 'fentry' ? FENTRY_SET : backend === 'kprobe' && !KPROBE_MULTI ? KPROBE_SET : undefined;
  test(`${KERNEL}: ${backend}: ${subset ? `the ${subset} functions` : 'every skb function'} attach (time printed)`, async () => {
    const t0 = Date.now();
    const only = subset ? ['--filter-func', subset] : [];
    const { stderr } = await traced(['--backend', backend, '--attach', 'functions', ...only], async () => {});
    const line = /pktpath: functions: .*/.exec(stderr)?.[0] ?? '';
    process.stdout.write(`# ${KERNEL} ${backend}: ${line} (whole run ${Date.now() - t0} ms)\n`);
    assert.match(line, new RegExp(`\\d+ with ${backend}`));
  });
}

for (const backend of BACKENDS) {
  test(`${KERNEL}: ${backend}: --output-stack at function points: each event's stack, its callers in it`, async () => {
    const { events, stderr } = await traced(['--attach', 'functions', '--backend', backend, '--filter-func', '^(ip_rcv|icmp_rcv)$', '--output-stack'], ping);
    const funcs = events.filter((e) => e.probe.type === (backend === 'fentry' ? 'fentry' : 'kprobe'));
    assert.ok(funcs.length > 0, `no function events:\n${stderr}`);
    for (const e of funcs) assert.ok((e.stack?.length ?? 0) >= 3, `no stack at ${e.func}: ${JSON.stringify(e.stack)}`);
    // icmp_rcv is called by the IPv4 protocol dispatch, on the local delivery path.
    const icmp = funcs.find((e) => e.func === 'icmp_rcv');
    assert.ok(icmp?.stack?.some((f) => /^ip_(protocol_deliver_rcu|local_deliver)/.test(f)), JSON.stringify(icmp?.stack));
    process.stdout.write(`# ${KERNEL} ${backend}: icmp_rcv's stack: ${icmp!.stack!.slice(0, 6).join(' ← ')}\n`);
  });
}

// --output-retval's scenarios (fexit and kretprobes): ./probe.test.ts.

test(`${KERNEL}: --kmods nf_conntrack: a module's skb function on the ping's path, left out without it`,
  { skip: BACKENDS.length === 0 ? 'no function backend here' : !since(5, 11) && 'no module BTF before 5.11: module functions cannot be found' }, async () => {
  execFileSync('modprobe', ['nf_conntrack']);
  const list = (more: string[]) => spawnSync(process.execPath, [PKTPATH, 'list', '--attach', 'functions', '--filter-func', '^nf_conntrack_in$', ...more], { encoding: 'utf8' });
  assert.equal(list([]).status, 2, 'nf_conntrack_in is planned without --kmods');
  assert.equal(list(['--all-kmods']).stdout, 'nf_conntrack_in\n');
  const { events, stderr } = await traced(['--attach', 'functions', '--kmods', 'nf_conntrack', '--filter-func', '^nf_conntrack_in$'], async (lab, a, b) => {
    // Conntrack runs in B once a rule there needs it.
    lab.nft(b, 'table inet t {\n chain i {\n  type filter hook input priority 0;\n  ct state new,established accept\n }\n}\n');
    await ping(lab, a);
  });
  const ct = events.filter((e) => e.func === 'nf_conntrack_in');
  assert.ok(ct.length >= 2, stderr);
  process.stdout.write(`# ${KERNEL}: --kmods nf_conntrack: ${ct.length} nf_conntrack_in events (${ct[0]!.probe.type})\n`);
});

test(`${KERNEL}: what this kernel lacks for function probes is refused in one line, nothing attached`,
  { skip: (BACKENDS.length === 0 || since(5, 15)) && 'nothing to refuse: return values and module functions work here' }, () => {
  const refused = (args: string[], code: number) => {
    const r = spawnSync(process.execPath, [PKTPATH, '--attach', 'functions', '--filter-func', '^(ip_rcv|nf_conntrack_in)$', ...args],
      { encoding: 'utf8', timeout: ATTACH_MS });
    assert.equal(r.status, code, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(pktpathPrograms(), 0, 'pktpath programs left');
    process.stdout.write(`# ${KERNEL}: ${r.stderr.trim()}\n`);
    return r.stderr;
  };
  assert.match(refused(['--output-retval'], 1), /--output-retval: return values need/);
  if (!since(5, 11)) {
    execFileSync('modprobe', ['nf_conntrack']);
    assert.match(refused(['--kmods', 'nf_conntrack'], 2), /--kmods: module 'nf_conntrack' is loaded but has no BTF/);
  }
});

test(`${KERNEL}: --filter-skb-expr on every family this kernel has: only the skbs it names`, async () => {
  // Functions too where the kernel lets them be probed: the expression runs in kprobes and fentry programs as well.
  const functions = BACKENDS.length > 0 ? ['--attach', 'tracepoints,tc,netfilter,functions', '--backend', BACKENDS[0]!] : [];
  const { events, stderr } = await traced(
    ['--filter-skb-expr', 'skb->len > 500 && skb->protocol == 0x0800', '--filter-func', '^(tc:|nf:|netif_receive_skb$|ip_rcv$)', ...functions,
      '--output-skb', '--output-skb-metadata', 'skb->len,skb->mark'],
    async (lab, a) => {
      await lab.exec(a, ['ping', '-c', '2', '-i', '0.3', '-s', '100', '-W', '2', '192.0.2.2']);
      await lab.exec(a, ['ping', '-c', '2', '-i', '0.3', '-s', '1000', '-W', '2', '192.0.2.2']);
    },
  );
  assert.ok(events.length > 0, stderr);
  assert.ok(events.every((e) => e.len > 500 && e.proto === 0x0800), JSON.stringify(events.find((e) => e.len <= 500)));
  // The fields read from BTF and the kernel's own printing of the skb, where the program type may print.
  assert.ok(events.every((e) => e.skb_metadata?.['skb->len'] === e.len));
  const printed = events.filter((e) => e.probe.type === 'tracepoint' || e.probe.type === 'kprobe');
  assert.ok(printed.length > 0 && printed.every((e) => e.skb_dump?.skb?.includes(`.len = (unsigned int)${e.len},`)), JSON.stringify(printed[0]?.skb_dump));
  process.stdout.write(`# ${KERNEL}: --filter-skb-expr at ${[...new Set(events.map((e) => e.probe.type))].join(', ')}\n`);
});

test(`${KERNEL}: route and neighbour points: the ping's lookup and its ARP, each with its section`, async () => {
  const { events, stderr } = await traced(['--attach', 'tracepoints', '--filter-func', '^(fib6?|neigh):', '--output-route', '--output-neigh'], ping);
  const points = new Set(events.map((e) => e.func));
  process.stdout.write(`# ${KERNEL}: decision points seen: ${[...points].join(', ')}\n`);
  // Points this kernel lacks are said (neigh_cleanup_and_release, optional, is not); the lookup and the neighbour's creation are in every kernel.
  for (const line of stderr.split('\n').filter((l) => /--output-(route|neigh): /.test(l))) process.stdout.write(`# ${KERNEL}: ${line}\n`);
  assert.doesNotMatch(stderr, /(fib:fib_table_lookup|fib6:fib6_table_lookup|neigh:neigh_create|neigh:neigh_update): not in this kernel/, stderr);
  const lookups = events.filter((e) => e.func === 'fib:fib_table_lookup');
  assert.ok(lookups.some((e) => e.route!.table_name === 'main' && e.route!.result === 'unicast' && e.route!.oif_name === 'veth-a'),
    lookups.map((e) => JSON.stringify(e.route)).join('\n'));
  const neighbour = events.filter((e) => e.neigh !== undefined);
  assert.ok(neighbour.some((e) => e.neigh!.event === 'create' && e.neigh!.address === '192.0.2.2'), neighbour.map((e) => JSON.stringify(e.neigh)).join('\n'));
  assert.ok(neighbour.some((e) => e.neigh!.state === 'REACHABLE' && e.neigh!.lladdr !== null), neighbour.map((e) => JSON.stringify(e.neigh)).join('\n'));
});

test(`${KERNEL}: tc and netfilter points, conntrack states`, async (t) => {
  const { events, stderr } = await traced(['--attach', 'tc,netfilter', '--output-ct'], async (lab, a) => {
    // Conntrack runs in a namespace once something there needs it.
    lab.nft(a, 'table inet t {\n chain o {\n  type filter hook output priority 0;\n  ct state new,established accept\n }\n}\n');
    await ping(lab, a);
  });
  const points = new Set(events.map((e) => e.func));
  // tcx links, or pktpath's own cls_bpf filters where the kernel has no tcx.
  assert.ok(points.has('tc:egress') && points.has('tc:ingress'), `tc points: ${[...points].join(', ')}\n${stderr}`);
  // Netfilter links, or the exit of nf_hook_slow where the kernel has none: the same points, the same conntrack states.
  const viaHookFunction = /observed at the exit of nf_hook_slow/.test(stderr);
  process.stdout.write(`# ${KERNEL}: netfilter ${viaHookFunction ? 'at nf_hook_slow (fexit)' : 'through netfilter links'}\n`);
  assert.ok(points.has('nf:ipv4:local_out'), `netfilter points: ${[...points].join(', ')}\n${stderr}`);
  const states = new Set(events.filter((e) => e.ct).map((e) => e.ct!.state));
  assert.ok(states.has('NEW') && states.has('ESTABLISHED'), `conntrack states: ${[...states].join(', ')}`);
  // Only the hooks asked for.
  const { events: only } = await traced(['--attach', 'netfilter', '--filter-func', 'nf:ipv4:local_out'], async (lab, a) => {
    lab.nft(a, 'table inet t {\n chain o {\n  type filter hook output priority 0;\n  ct state new,established accept\n }\n}\n');
    await ping(lab, a);
  });
  assert.ok(only.length > 0 && only.every((e) => e.func === 'nf:ipv4:local_out'), [...new Set(only.map((e) => e.func))].join(', '));
  if (!viaHookFunction) t.diagnostic('netfilter links here: the hook-function path is for older kernels');
});

test(`${KERNEL}: --filter-trace-tc: a CNI's tc programs, entry and exit, with the verdicts they return`, { skip: !BACKENDS.includes('fentry') && 'no fentry here' }, async () => {
  const lab = new Lab('pt');
  try {
    // A policy program loaded by tc (cls_bpf, with BTF), and on kernels with tcx a bpf_redirect_peer program.
    const node = await cniNode(lab, { objects: OBJECTS, redirect: HAS_TCX, nft: false });
    const run = await startTracer(['--filter-trace-tc', '--attach', 'tc', '--filter-proto', 'udp'], ATTACH_MS);
    lab.execSync(node.podB, ['bash', '-c', `echo x > /dev/udp/${CNI.podA.addr}/${CNI.tcDroppedPort}; echo x > /dev/udp/${CNI.podA.addr}/7777`]);
    if (HAS_TCX) lab.execSync(node.podA, ['bash', '-c', `echo x > /dev/udp/${CNI.podB.addr}/7777`]);
    const r = await run.stop();
    assert.equal(r.code, 0, r.stderr);
    const exits = r.events.filter((e) => e.probe.type === 'fexit');
    const policy = exits.filter((e) => e.func === 'bpf:cni_policy:exit');
    const dropped = policy.find((e) => e.tuple?.dport === CNI.tcDroppedPort);
    const passed = policy.find((e) => e.tuple?.dport === 7777);
    assert.equal(dropped?.verdict?.action, 'drop', `${JSON.stringify(dropped)}\n${r.stderr}`);
    assert.equal(dropped?.verdict?.inferred, false);
    assert.deepEqual(dropped?.verdict?.by, [{ id: node.policyId, name: 'cni_policy' }]);
    assert.equal(passed?.verdict?.action, 'pass');
    assert.ok(r.events.some((e) => e.func === 'bpf:cni_policy' && e.probe.type === 'fentry'), 'the entry too');
    if (HAS_TCX) {
      const redirect = exits.find((e) => e.func === 'bpf:cni_redirect:exit' && e.tuple?.daddr === CNI.podB.addr);
      assert.equal(redirect?.verdict?.action, 'redirect', JSON.stringify(redirect));
      assert.equal(redirect?.verdict?.target?.kind, 'peer');
      assert.equal(redirect?.verdict?.target?.iface, 'lxc-b');
    }
    process.stdout.write(`# ${KERNEL}: --filter-trace-tc: ${exits.length} exits: ${[...new Set(exits.map((e) => `${e.func} ${e.verdict?.action}`))].join(', ')}\n`);
  } finally {
    lab.cleanup();
  }
});

test(`${KERNEL}: --filter-trace-xdp: an XDP program's entry and exit, with the verdicts it returns`, { skip: !BACKENDS.includes('fentry') && 'no fentry here' }, async () => {
  const lab = new Lab('px');
  try {
    const { a, b } = twoHosts(lab);
    lab.execSync(b, ['ip', 'link', 'set', 'dev', 'veth-b', 'xdpgeneric', 'obj', `${OBJECTS}/xdp_policy.bpf.o`, 'sec', 'xdp']);
    const run = await startTracer(['--filter-trace-xdp', '--attach', 'tracepoints', '--filter-func', 'kfree_skb', '--filter-dst-ip', '192.0.2.2',
      '--filter-proto', 'udp'], ATTACH_MS);
    lab.execSync(a, ['bash', '-c', 'echo x > /dev/udp/192.0.2.2/9999; echo x > /dev/udp/192.0.2.2/7777']);
    const r = await run.stop();
    assert.equal(r.code, 0, r.stderr);
    const exits = r.events.filter((e) => e.func === 'bpf:xdp_policy:exit');
    const dropped = exits.find((e) => e.tuple?.dport === 9999);
    const passed = exits.find((e) => e.tuple?.dport === 7777);
    assert.equal(dropped?.verdict?.action, 'drop', `${JSON.stringify(exits)}\n${r.stderr}`);
    assert.equal(dropped?.verdict?.evidence, 'returned XDP_DROP');
    assert.equal(passed?.verdict?.action, 'pass');
    assert.match(passed?.iface ?? '', /^veth-b/);
    // Filtered like every other point: only the datagrams to B.
    for (const e of r.events) assert.equal(e.tuple?.daddr, '192.0.2.2', JSON.stringify(e));
    assert.ok(r.events.some((e) => e.func === 'bpf:xdp_policy' && e.probe.type === 'fentry'), 'the entry too');
  } finally {
    lab.cleanup();
  }
});

test(`${KERNEL}: --attach none: BPF programs only, a CNI's tc programs and their verdicts, no kernel point`, { skip: !BACKENDS.includes('fentry') && 'no fentry here' }, async () => {
  const lab = new Lab('pn');
  try {
    const node = await cniNode(lab, { objects: OBJECTS, redirect: false, nft: false });
    const run = await startTracer(['--attach', 'none', '--filter-trace-tc', '--filter-proto', 'udp'], ATTACH_MS);
    lab.execSync(node.podB, ['bash', '-c', `echo x > /dev/udp/${CNI.podA.addr}/${CNI.tcDroppedPort}; echo x > /dev/udp/${CNI.podA.addr}/7777`]);
    const r = await run.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /attached \d+ links: 0 tracepoints, tc on 0 devices, netfilter in 0 namespaces/);
    // Found by reading the devices' hooks (no tc observer of pktpath's): the programs' trampolines alone.
    assert.ok(r.events.length > 0 && r.events.every((e) => e.probe.type === 'fentry' || e.probe.type === 'fexit'),
      [...new Set(r.events.map((e) => e.func))].join(', '));
    const policy = r.events.filter((e) => e.func === 'bpf:cni_policy:exit');
    assert.equal(policy.find((e) => e.tuple?.dport === CNI.tcDroppedPort)?.verdict?.action, 'drop', r.stderr);
    assert.equal(policy.find((e) => e.tuple?.dport === 7777)?.verdict?.action, 'pass');
  } finally {
    lab.cleanup();
  }
});

test(`${KERNEL}: --filter-xdp-expr with --attach none: only the frames of an XDP program whose xdp_buff matches`, { skip: !BACKENDS.includes('fentry') && 'no fentry here' }, async () => {
  const lab = new Lab('pe');
  try {
    const { a, b } = twoHosts(lab);
    lab.execSync(b, ['ip', 'link', 'set', 'dev', 'veth-b', 'xdpgeneric', 'obj', `${OBJECTS}/xdp_policy.bpf.o`, 'sec', 'xdp']);
    const ifindex = Number(lab.execSync(b, ['cat', '/sys/class/net/veth-b/ifindex']).trim());
    const args = ['--attach', 'none', '--filter-trace-xdp', '--filter-proto', 'udp', '--filter-xdp-expr'];
    const [match, other] = [await startTracer([...args, `xdp->rxq->dev->ifindex == ${ifindex}`], ATTACH_MS),
      await startTracer([...args, `xdp->rxq->dev->ifindex == ${ifindex + 1000}`], ATTACH_MS)];
    lab.execSync(a, ['bash', '-c', 'echo x > /dev/udp/192.0.2.2/7777; echo x > /dev/udp/192.0.2.2/9999']);
    const [m, o] = [await match.stop(), await other.stop()];
    assert.equal(m.code, 0, m.stderr);
    assert.equal(o.code, 0, o.stderr);
    assert.ok(m.events.some((e) => e.func === 'bpf:xdp_policy:exit' && e.verdict?.action === 'drop'), `${JSON.stringify(m.events)}\n${m.stderr}`);
    assert.ok(m.events.every((e) => e.probe.type === 'fentry' || e.probe.type === 'fexit'));
    assert.deepEqual(o.events, [], 'no frame of another device');
  } finally {
    lab.cleanup();
  }
});

test(`${KERNEL}: nothing left after SIGKILL while attached`, async () => {
  const lab = new Lab('pk');
  try {
    const { b } = twoHosts(lab);
    // Every family, with a few functions: a thousand kprobes take minutes to release under emulation.
    const run = await startTracer(['--filter-dst-ip', '192.0.2.2', '--filter-func', `${FUNCS.slice(0, -2)}|tc:|nf:|kfree_skb)$`], ATTACH_MS);
    run.child.kill('SIGKILL');
    await new Promise((r) => run.child.on('exit', r));
    // The kernel frees programs after an RCU grace period: slow under emulation.
    for (let i = 0; i < 100 && pktpathPrograms() > 0; i++) await new Promise((r) => setTimeout(r, 200));
    assert.equal(pktpathPrograms(), 0, 'pktpath programs left');
    assert.equal(linkInfos().length, 0, 'links left');
    assert.equal(readFileSync('/sys/kernel/tracing/kprobe_events', 'utf8').trim(), '', 'kprobe events left');
    // No tc filter of pktpath's (kernels without tcx: its watchdog removed them).
    const filters = execFileSync('ip', ['netns', 'exec', b, 'tc', 'filter', 'show', 'dev', 'veth-b', 'ingress'], { encoding: 'utf8' });
    assert.doesNotMatch(filters, /pktpath_/);
  } finally {
    lab.cleanup();
  }
});
