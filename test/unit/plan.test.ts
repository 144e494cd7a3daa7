import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../src/cli/trace-config.js';
import type { KernelView } from '../../src/kernel/view.js';
import { returnProbe } from '../../src/trace/functions.js';
import { TC_DEVICE_BUDGET, backendOrder, planPointNames, planProbes, tcDevicePlacement, tracepointPoint } from '../../src/plan/plan.js';

const ns = (inode: number, name: string) => ({ inode, name, path: `/run/netns/${name}` });

function kernel(over: Partial<KernelView['features']> = {}, functions: KernelView['functions'] = null): KernelView {
  return {
    functions,
    tracepoints: new Map([
      ['kfree_skb', [
        { index: 0, typeName: 'struct sk_buff *' }, { index: 1, typeName: 'void *' },
        { index: 2, typeName: 'enum skb_drop_reason' }, { index: 3, typeName: 'struct sock *' },
      ]],
      ['net_dev_start_xmit', [{ index: 0, typeName: 'const struct sk_buff *' }, { index: 1, typeName: 'const struct net_device *' }]],
      ['qdisc_dequeue', [
        { index: 0, typeName: 'struct Qdisc *' }, { index: 1, typeName: 'const struct netdev_queue *' },
        { index: 2, typeName: 'int' }, { index: 3, typeName: 'struct sk_buff *' },
      ]],
      ['udp_fail_queue_rcv_skb', [{ index: 0, typeName: 'int' }, { index: 1, typeName: 'struct sock *' }]],
      ['netif_rx', null],
    ]),
    features: { tracing: true, tcx: true, netfilter: true, ...over },
    namespaces: [
      { netns: ns(1, ''), ifaces: [{ ifindex: 1, name: 'lo' }] },
      { netns: ns(2, 'b'), ifaces: [{ ifindex: 1, name: 'lo' }, { ifindex: 2, name: 'veth-b' }] },
    ],
  };
}

test('tracepoint arguments are located by type, whatever the kernel version put where', () => {
  assert.deepEqual(tracepointPoint('kfree_skb', kernel().tracepoints.get('kfree_skb')!),
    { name: 'kfree_skb', skbArg: 0, reasonArg: 2, locationArg: 1, devArg: -1 });
  assert.deepEqual(tracepointPoint('qdisc_dequeue', kernel().tracepoints.get('qdisc_dequeue')!)?.skbArg, 3);
  assert.deepEqual(tracepointPoint('net_dev_start_xmit', kernel().tracepoints.get('net_dev_start_xmit')!)?.devArg, 1);
  // An older kfree_skb without a reason, and a tracepoint with no skb at all.
  assert.equal(tracepointPoint('kfree_skb', [{ index: 0, typeName: 'struct sk_buff *' }, { index: 1, typeName: 'void *' }])?.reasonArg, -1);
  assert.equal(tracepointPoint('udp_fail_queue_rcv_skb', kernel().tracepoints.get('udp_fail_queue_rcv_skb')!), null);
});

test('the plan places tc on every device and netfilter in every namespace, and says what is missing', () => {
  const plan = planProbes(buildConfig({}, []).attach, kernel());
  assert.deepEqual(plan.tracepoints.map((t) => t.name), ['qdisc_dequeue', 'net_dev_start_xmit', 'kfree_skb']);
  assert.equal(plan.tc.length, 3 * 2);
  assert.equal(plan.netfilter.length, 2 * 10);
  assert.ok(plan.notes.some((n) => /netif_rx: not in this kernel/.test(n)));
  assert.ok(plan.notes.some((n) => /udp_fail_queue_rcv_skb: carries no skb/.test(n)));
  // Every netfilter observer sits right after conntrack, before NAT.
  assert.ok(plan.netfilter.every((n) => n.priority === -199 && !n.afterNat));
});

test('--tc-devices: auto observes every device up to the budget or where namespaces are named, else only where other tc programs run', () => {
  assert.equal(tcDevicePlacement('auto', TC_DEVICE_BUDGET, false), 'all');
  assert.equal(tcDevicePlacement('auto', TC_DEVICE_BUDGET + 1, false), 'programs');
  assert.equal(tcDevicePlacement('auto', 331, true), 'all');
  assert.equal(tcDevicePlacement('all', 331, false), 'all');
  assert.equal(tcDevicePlacement('programs', 3, true), 'programs');

  const k = kernel();
  const busy: KernelView = { ...k, namespaces: k.namespaces.map((n) => ({ ...n, tcBusy: new Set(n.netns.inode === 2 ? [2] : []) })) };
  const plan = planProbes({ ...buildConfig({}, []).attach, tcDevices: 'programs' }, busy);
  assert.deepEqual(plan.tc.map((t) => `${t.netns.name}:${t.iface.name}:${t.direction}`), ['b:veth-b:ingress', 'b:veth-b:egress']);
  assert.deepEqual(plan.tcAside.map((t) => `${t.netns.inode}:${t.iface.name}`), ['1:lo', '2:lo']);
  assert.equal(plan.template.tcDevices, 'programs');
  assert.ok(plan.notes.some((n) => /tc: observed at the 1 device where other tc programs run; the 2 others/.test(n)), plan.notes.join('\n'));
  // Netfilter is not narrowed: its links cost no grace period.
  assert.equal(plan.netfilter.length, 2 * 10);
  assert.throws(() => buildConfig({ tcDevices: 'some' }, []), /--tc-devices/);
  // tc points asked for by name: auto observes them everywhere (prepare passes tcAsked as `named`).
  assert.equal(buildConfig({ attach: 'tracepoints,tc' }, []).attach.tcAsked, true);
  assert.equal(buildConfig({ filterFunc: 'kfree_skb|tc:' }, []).attach.tcAsked, true);
  assert.equal(buildConfig({ filterFunc: 'kfree_skb' }, []).attach.tcAsked, false);
  assert.equal(buildConfig({}, []).attach.tcAsked, false);
});

test('--filter-track-skb: the frees --filter-func or --attach leave out are watched all the same, never listed', () => {
  const netifRx = planProbes(buildConfig({ filterTrackSkb: true, filterFunc: '^net_dev_start_xmit$' }, []).attach, kernel());
  assert.deepEqual(netifRx.tracepoints.map((t) => t.name), ['net_dev_start_xmit']);
  // consume_skb is not in this kernel: said, not hidden.
  assert.deepEqual(netifRx.forgets, [{ name: 'kfree_skb', skbArg: 0, reasonArg: 2, locationArg: 1, devArg: -1 }]);
  assert.ok(netifRx.notes.some((n) => /--filter-track-skb: tracepoint consume_skb: not in this kernel/.test(n)), netifRx.notes.join('\n'));
  assert.deepEqual(planPointNames(netifRx), ['net_dev_start_xmit']);
  assert.deepEqual(planProbes(buildConfig({ filterTrackSkb: true, attach: 'tc' }, []).attach, kernel()).forgets.map((t) => t.name), ['kfree_skb']);
  // Observed already, or not tracking: nothing more.
  assert.deepEqual(planProbes(buildConfig({ filterTrackSkb: true }, []).attach, kernel()).forgets, []);
  assert.deepEqual(planProbes(buildConfig({ filterFunc: '^net_dev_start_xmit$' }, []).attach, kernel()).forgets, []);
  const noTracing = planProbes(buildConfig({ filterTrackSkb: true, attach: 'tc' }, []).attach, kernel({ tracing: false }));
  assert.deepEqual(noTracing.forgets, []);
  assert.ok(noTracing.notes.some((n) => /--filter-track-skb: this kernel has no BTF-typed tracepoints.*frees are not seen/.test(n)));
});

test('with --output-ct, a second netfilter look right after NAT where NAT rewrites', () => {
  const plan = planProbes(buildConfig({ outputCt: true }, []).attach, kernel());
  const after = plan.netfilter.filter((n) => n.afterNat);
  // Every hook but forward, in both families and both namespaces.
  assert.equal(after.length, 2 * 2 * 4);
  assert.ok(!after.some((n) => n.hook === 'forward'));
  const prio = (hook: string) => after.find((n) => n.hook === hook)!.priority;
  assert.deepEqual([prio('pre_routing'), prio('local_out'), prio('post_routing'), prio('local_in')], [-99, -99, 101, 101]);
  // The points keep their names: `list` shows each hook once.
  assert.equal(planPointNames(plan).filter((n) => n.startsWith('nf:')).length, 10);
});

test('--filter-func and --attach narrow the plan; missing features are reported, not hidden', () => {
  const only = planProbes(buildConfig({ filterFunc: 'kfree_skb|tc:ingress|nf:ipv6:.*' }, []).attach, kernel());
  assert.deepEqual(planPointNames(only), ['kfree_skb', 'tc:ingress', 'nf:ipv6:pre_routing', 'nf:ipv6:local_in',
    'nf:ipv6:forward', 'nf:ipv6:local_out', 'nf:ipv6:post_routing']);
  const tpOnly = planProbes(buildConfig({ attach: 'tracepoints' }, []).attach, kernel());
  assert.equal(tpOnly.tc.length + tpOnly.netfilter.length, 0);
  const old = planProbes(buildConfig({}, []).attach, kernel({ tcx: false, netfilter: false }));
  // Without tcx, tc goes through pktpath's own cls_bpf filters; without netfilter links, netfilter is not observed.
  assert.equal(old.tcMode, 'clsact');
  assert.equal(old.tc.length, 6);
  assert.equal(old.netfilter.length, 0);
  assert.ok(old.notes.some((n) => /no tcx links.*cls_bpf filters named pktpath_PID/.test(n)));
  assert.ok(old.notes.some((n) => /no BPF netfilter links.*refuses fentry.*not observed/.test(n)));
});

const fentryOk: KernelView['functions'] = { backends: [{ backend: 'fentry', ok: true, detail: 'works' }], discovery: null };

test('without netfilter links but with fentry, netfilter is observed at nf_hook_slow, for the hooks asked', () => {
  const plan = planProbes(buildConfig({ filterFunc: 'nf:ipv4:(local_out|pre_routing)|kfree_skb' }, []).attach, kernel({ netfilter: false }, fentryOk));
  assert.equal(plan.netfilter.length, 0);
  assert.deepEqual(plan.nfHookFunction, { hooks: [{ family: 'ipv4', hook: 'pre_routing' }, { family: 'ipv4', hook: 'local_out' }] });
  assert.deepEqual(planPointNames(plan), ['kfree_skb', 'nf:ipv4:pre_routing', 'nf:ipv4:local_out']);
  assert.ok(plan.notes.some((n) => /observed at the exit of nf_hook_slow/.test(n)));
  // With netfilter links, the links.
  assert.equal(planProbes(buildConfig({}, []).attach, kernel({}, fentryOk)).nfHookFunction, null);
});

test('--filter-trace-tc: planned where fentry works, with a note when tc is left out', () => {
  assert.deepEqual(planProbes(buildConfig({ filterTraceTc: true, filterTraceXdp: true }, []).attach, kernel({}, fentryOk)).tracePrograms, ['tc', 'xdp']);
  assert.deepEqual(planProbes(buildConfig({ filterTraceTc: true }, []).attach, kernel()).tracePrograms, []);
  // Where tc is not observed, its programs are traced all the same (the programs family reads the hooks).
  const noTc = planProbes(buildConfig({ filterTraceTc: true, attach: 'tracepoints' }, []).attach, kernel({}, fentryOk));
  assert.deepEqual(noTc.tracePrograms, ['tc']);
  assert.deepEqual(noTc.template.tcDirections, []);
  assert.ok(!noTc.notes.some((n) => n.includes('--filter-trace-tc')), noTc.notes.join('\n'));
});

test('--attach none: BPF programs only, no kernel family; refused without --filter-trace-tc/-xdp', () => {
  const only = planProbes(buildConfig({ attach: 'none', filterTraceTc: true, filterTraceXdp: true }, []).attach, kernel({}, fentryOk));
  assert.deepEqual([only.tracepoints, only.functions, only.tc, only.netfilter, only.forgets], [[], [], [], [], []]);
  assert.deepEqual(only.template, { tcDirections: [], tcDevices: 'all', netfilter: [] });
  assert.deepEqual(only.tracePrograms, ['tc', 'xdp']);
  assert.deepEqual(buildConfig({ attach: ' none ', filterTraceXdp: true }, []).attach.families, new Set());
  assert.throws(() => buildConfig({ attach: 'none' }, []),
    /^UsageError: --attach none: traces only BPF programs: give --filter-trace-tc or --filter-trace-xdp \(or name the families to attach\)$/);
  assert.throws(() => buildConfig({ attach: 'none,tc', filterTraceTc: true }, []), /--attach: 'none' is not one of/);
});

const backends = (ok: string[]) => (['kprobe-multi', 'kprobe', 'fentry'] as const).map((backend) =>
  ({ backend, ok: ok.includes(backend), detail: ok.includes(backend) ? 'works' : 'loading: → EPERM' }));
const skbFunctions = {
  functions: [
    { name: 'ip_rcv', skbArg: 0, module: null }, { name: 'ip_local_deliver', skbArg: 0, module: null },
    { name: '__ip_local_out', skbArg: 2, module: null }, { name: 'kfree_skb', skbArg: 0, module: null },
    { name: 'nf_ct_deliver_cached_events', skbArg: 1, module: 'nf_conntrack' },
  ],
  filteredBy: 'test',
};

test('functions: every skb function of the core kernel but those a tracepoint of the same name shows; the skb position kept', () => {
  const cfg = buildConfig({}, []);
  const plan = planProbes(cfg.attach, kernel({}, { backends: backends(['kprobe-multi', 'kprobe', 'fentry']), discovery: skbFunctions }));
  assert.deepEqual(plan.functions.map((f) => [f.name, f.skbArg]), [['ip_rcv', 0], ['ip_local_deliver', 0], ['__ip_local_out', 2]]);
  // A small set: fentry first, then the others the kernel allows.
  assert.deepEqual(plan.functionBackends, ['fentry', 'kprobe-multi', 'kprobe']);
  assert.ok(planPointNames(plan).includes('__ip_local_out'));
});

test('functions: modules\' too with --kmods (those named) or --all-kmods, as pwru', () => {
  const view = kernel({}, { backends: backends(['kprobe-multi']), discovery: skbFunctions });
  const named = planProbes(buildConfig({ kmods: 'nf_conntrack' }, []).attach, view);
  assert.deepEqual(named.functions.at(-1), { name: 'nf_ct_deliver_cached_events', skbArg: 1, module: 'nf_conntrack' });
  assert.equal(named.functions.length, 4);
  assert.equal(planProbes(buildConfig({ kmods: 'vxlan' }, []).attach, view).functions.length, 3);
  assert.equal(planProbes(buildConfig({ allKmods: true }, []).attach, view).functions.length, 4);
  assert.deepEqual(buildConfig({ kmods: ' nf-conntrack , vxlan,' }, []).attach.kmods, ['nf_conntrack', 'vxlan']);
  assert.throws(() => buildConfig({ kmods: ' , ' }, []), /^UsageError: --kmods: name at least one kernel module/);
  assert.throws(() => buildConfig({ kmods: '../x' }, []), /^UsageError: --kmods: '\.\.\/x' is not a kernel module's name/);
});

test('functions: --filter-func selects them like any point; --backend narrows to one', () => {
  const cfg = buildConfig({ filterFunc: "^ip_", backend: "kprobe" }, []);
  const plan = planProbes(cfg.attach, kernel({}, { backends: backends(['kprobe', 'fentry']), discovery: skbFunctions }));
  assert.deepEqual(plan.functions.map((f) => f.name), ['ip_rcv', 'ip_local_deliver']);
  assert.deepEqual(plan.functionBackends, ['kprobe']);
});

test('--output-retval: fexit wherever the plan may use fentry, else the return probe of the entry\'s backend', () => {
  assert.equal(returnProbe('kprobe-multi', ['kprobe-multi', 'kprobe', 'fentry']), 'fexit');
  assert.equal(returnProbe('fentry', ['fentry']), 'fexit');
  assert.equal(returnProbe('kprobe-multi', ['kprobe-multi']), 'kretprobe-multi');
  assert.equal(returnProbe('kprobe', ['kprobe']), 'kretprobe');
  // fentry refused: what kprobe-multi refused went to kprobe.
  assert.equal(returnProbe('kprobe', ['kprobe-multi', 'kprobe']), 'kretprobe');
});

test('backend order: auto takes what works, kprobe-multi first for a large set, fentry first for a small one', () => {
  assert.deepEqual(backendOrder('auto', ['kprobe-multi', 'kprobe', 'fentry'], 1500), ['kprobe-multi', 'kprobe', 'fentry']);
  assert.deepEqual(backendOrder('auto', ['kprobe', 'fentry'], 1500), ['kprobe', 'fentry']);
  assert.deepEqual(backendOrder('auto', ['kprobe-multi', 'kprobe', 'fentry'], 10), ['fentry', 'kprobe-multi', 'kprobe']);
  assert.deepEqual(backendOrder('fentry', ['kprobe'], 10), []);
  assert.deepEqual(backendOrder('auto', [], 10), []);
});

test('functions: no backend here → none planned, and a note only when functions were asked for', () => {
  const view = kernel({}, { backends: backends([]), discovery: null });
  const quiet = planProbes(buildConfig({}, []).attach, view);
  assert.deepEqual(quiet.functions, []);
  assert.ok(!quiet.notes.some((n) => n.startsWith('functions:')));
  const asked = planProbes(buildConfig({ attach: "tracepoints,functions" }, []).attach, view);
  assert.match(asked.notes.find((n) => n.startsWith('functions:'))!, /no backend.*kprobe-multi: loading: → EPERM.*tracepoints, tc and netfilter/);
});
