/**
 * pwru's tuning flags: --set-percpu-buf (the rooms of the printed structs),
 * --netns-names-max-length, --filter-kprobe-batch, --debug — parsed, and
 * what each changes: the probes' config, the dump section's layout, the
 * NETNS column, the plan's note.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../src/cli/trace-config.js';
import { UsageError } from '../../src/cli/values.js';
import { encodeConfig } from '../../src/decode/probe-config.js';
import { CONFIG_LAYOUT } from '../../src/decode/layout.js';
import { DEFAULT_DUMP_ROOM, dumpSection } from '../../src/output/sections/dump.js';
import { TextFormatter, cutName } from '../../src/output/text.js';
import type { TraceEvent } from '../../src/output/event.js';
import type { KernelView } from '../../src/kernel/view.js';
import { planProbes } from '../../src/plan/plan.js';
import { loadFixture } from '../helpers/fixtures.js';
import { vmlinuxBtf } from '../../src/bpf/btf/vmlinux.js';
import { checkXdpExpressions } from '../../src/cli/xdp-expr.js';
import { activateFilter } from '../../src/cli/filter.js';
import { prepareSections } from '../../src/output/sections/registry.js';

test('--set-percpu-buf: each printed struct gets that room, rounded up to 8; the default is pktpath\'s 3072/1024', () => {
  assert.deepEqual(buildConfig({}, []).output.dump.room, DEFAULT_DUMP_ROOM);
  assert.deepEqual(buildConfig({ setPercpuBuf: '4096' }, []).output.dump.room, { skb: 4096, sharedInfo: 4096 });
  assert.deepEqual(buildConfig({ setPercpuBuf: '1001' }, []).output.dump.room, { skb: 1008, sharedInfo: 1008 });
  for (const bad of ['0', '255', '32001', '4k', '-1', '']) {
    assert.throws(() => buildConfig({ setPercpuBuf: bad }, []), (e: unknown) =>
      e instanceof UsageError && /^--set-percpu-buf: /.test(e.message), bad);
  }
});

test('--set-percpu-buf reaches the probes only for the structs asked for', () => {
  const F = CONFIG_LAYOUT.fields;
  const room = { skb: 4096, sharedInfo: 4096 };
  const cfg = (dump: { skb: boolean; sharedInfo: boolean; cb: boolean }) =>
    encodeConfig({ pointId: 1, stack: false, filter: false, skbArg: 0, netns: 0, ifindex: 0, mark: null, track: false, snaplen: 0, dump: { ...dump, room } });
  const both = cfg({ skb: true, sharedInfo: true, cb: false });
  assert.equal(both.readUInt16LE(F.dump_skb_room), 4096);
  assert.equal(both.readUInt16LE(F.dump_shinfo_room), 4096);
  // --output-skb-cb alone: no room for texts, the record stays small.
  const cb = cfg({ skb: false, sharedInfo: false, cb: true });
  assert.equal(cb.readUInt16LE(F.dump_skb_room), 0);
  assert.equal(cb.readUInt16LE(F.dump_shinfo_room), 0);
});

/** A dump section as the probe writes it: the struct, then each text in its room. */
function dumpBytes(skb: string, skbRoom: number, shinfo: string, shinfoRoom: number): Buffer {
  const L = dumpSection.layout;
  const b = Buffer.alloc(L.size + skbRoom + shinfoRoom);
  b.writeUInt16LE(skb.length, L.fields.skb_len!);
  b.writeUInt16LE(shinfo.length, L.fields.shinfo_len!);
  b.writeUInt16LE(skbRoom, L.fields.skb_room!);
  b.writeUInt16LE(shinfoRoom, L.fields.shinfo_room!);
  b.write(skb, L.size);
  b.write(shinfo, L.size + skbRoom);
  b.write('veth0', L.fields.dev_name!);
  return b;
}

test('the dump section is read from its rooms, whatever their size; a length past its room is cut to it', () => {
  for (const [skbRoom, shRoom] of [[3072, 1024], [256, 256], [8, 16000]] as const) {
    const bytes = dumpBytes('(struct sk_buff){.len = 98}', Math.max(skbRoom, 32), '(struct skb_shared_info){}', Math.max(shRoom, 32));
    const d = dumpSection.decode(new DataView(bytes.buffer, bytes.byteOffset), bytes, 0)!;
    assert.equal(d.skb, '(struct sk_buff){.len = 98}');
    assert.equal(d.sharedInfo, '(struct skb_shared_info){}');
    assert.equal(d.dev, 'veth0');
  }
  const lying = dumpBytes('abcdefgh', 8, 'x', 8);
  lying.writeUInt16LE(9000, dumpSection.layout.fields.skb_len!);
  assert.equal(dumpSection.decode(new DataView(lying.buffer, lying.byteOffset), lying, 0)!.skb, 'abcdefgh');
});

test('--netns-names-max-length: pwru\'s floor of 10, names cut in text only, by characters', () => {
  assert.equal(buildConfig({}, []).output.netnsNamesMax, 0);
  assert.equal(buildConfig({ netnsNamesMaxLength: '16' }, []).output.netnsNamesMax, 16);
  assert.equal(buildConfig({ netnsNamesMaxLength: '3' }, []).output.netnsNamesMax, 10);
  for (const bad of ['0', '256', 'x']) assert.throws(() => buildConfig({ netnsNamesMaxLength: bad }, []), /--netns-names-max-length: /);
  assert.equal(cutName('kube-system/coredns-abc', 10), 'kube-syste');
  assert.equal(cutName('short', 10), 'short');
  assert.equal(cutName('whole-name-kept', 0), 'whole-name-kept');
  // A character outside the BMP is one, never half of one; control characters are escaped after the cut.
  assert.equal(cutName('😀'.repeat(12), 10), '😀'.repeat(10));

  const e: TraceEvent = { ...loadFixture().events[0]!, netnsName: 'a-very-long-namespace-name', pod: null };
  const base = { tuple: false, meta: true, stack: false, caller: false, tcpFlags: false, timestamp: 'none' as const, color: false, netnsNames: true };
  assert.match(new TextFormatter({ ...base, netnsNamesMax: 12 }).formatEvent(e), / a-very-long- {1,}0x/);
  assert.ok(new TextFormatter(base).formatEvent(e).includes(' a-very-long-namespace-name '));
});

const view = (kprobe: boolean): KernelView => ({
  functions: {
    backends: [
      { backend: 'kprobe-multi', ok: false, detail: 'not compiled in' },
      { backend: 'kprobe', ok: kprobe, detail: kprobe ? 'works' : 'kprobes are not compiled in (CONFIG_KPROBES)' },
      { backend: 'fentry', ok: false, detail: 'loading: → EPERM' },
    ],
    discovery: { functions: [{ name: 'ip_rcv', skbArg: 0, module: null }], filteredBy: 'test' },
  },
  tracepoints: new Map(),
  features: { tracing: true, tcx: true, netfilter: true },
  namespaces: [],
});

test('--filter-kprobe-batch: the kprobe backend\'s batch; one line where that backend is not used', () => {
  assert.equal(buildConfig({}, []).attach.kprobeBatch, null);
  assert.equal(buildConfig({ filterKprobeBatch: '10' }, []).attach.kprobeBatch, 10);
  for (const bad of ['0', '-1', '4097', 'ten']) assert.throws(() => buildConfig({ filterKprobeBatch: bad }, []), /--filter-kprobe-batch: /);

  const used = planProbes(buildConfig({ filterKprobeBatch: '10' }, []).attach, view(true));
  assert.deepEqual(used.functionBackends, ['kprobe']);
  assert.equal(used.kprobeBatch, 10);
  assert.ok(!used.notes.some((n) => n.includes('--filter-kprobe-batch')));

  const refused = planProbes(buildConfig({ filterKprobeBatch: '10' }, []).attach, view(false));
  assert.deepEqual(refused.notes.filter((n) => n.includes('--filter-kprobe-batch')),
    ['--filter-kprobe-batch: applies to the kprobe backend, not used here (this kernel refuses kprobes: kprobes are not compiled in (CONFIG_KPROBES)); ignored']);
  const noFunctions = planProbes(buildConfig({ filterKprobeBatch: '10', attach: 'tracepoints' }, []).attach, view(true));
  assert.ok(noFunctions.notes.some((n) => /--filter-kprobe-batch: .*--attach leaves out functions/.test(n)));
  assert.ok(!planProbes(buildConfig({}, []).attach, view(false)).notes.some((n) => n.includes('kprobe-batch')));
});

test('--debug is a switch of the run', () => {
  assert.equal(buildConfig({}, []).debug, false);
  assert.equal(buildConfig({ debug: true }, []).debug, true);
});

const skipNoBtf = vmlinuxBtf() === null ? 'no kernel BTF' : false;
const fentry = (ok: boolean) => ({ backend: 'fentry' as const, ok, detail: ok ? 'works' : 'loading: → EPERM' });

test('--filter-xdp-expr, --output-xdp-metadata: parsed, checked against xdp_buff in BTF, compiled, refused where fentry is', { skip: skipNoBtf }, () => {
  const cfg = (o: Record<string, unknown>) => buildConfig({ filterTraceXdp: true, ...o }, []);
  assert.equal(cfg({ filterXdpExpr: 'xdp->rxq->dev->ifindex == 9' }).filter.xdpExpr, 'xdp->rxq->dev->ifindex == 9');
  const meta = cfg({ outputXdpMetadata: ' xdp->rxq->queue_index, xdp->data_end ' }).output;
  assert.deepEqual(meta.sectionValues.outputXdpMetadata, ['xdp->rxq->queue_index', 'xdp->data_end']);
  assert.ok(meta.sections.includes('xdpMeta'));
  // Compiled against the xdp_buff, as the section's option prepares it for the probes.
  const fetch = prepareSections(meta.sectionValues).xdpMeta!;
  assert.deepEqual(fetch.fields, ['xdp->rxq->queue_index', 'xdp->data_end']);
  assert.equal(fetch.bytes, 16);
  assert.ok(!buildConfig({}, []).output.sections.includes('xdpMeta'));
  assert.throws(() => cfg({ outputXdpMetadata: Array.from({ length: 17 }, () => 'xdp->data').join(',') }),
    /^UsageError: --output-xdp-metadata: name 1 to 16 fields, comma-separated \(xdp->rxq->queue_index\)$/);
  assert.throws(() => cfg({ filterXdpExpr: ' ' }), /--filter-xdp-expr: the expression is empty/);

  const usage = (o: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => checkXdpExpressions(buildConfig(o, []), fentry(true)), (e: unknown) => e instanceof UsageError && re.test(e.message), JSON.stringify(o));
  usage({ filterXdpExpr: 'xdp->data' }, /^--filter-xdp-expr: reads the xdp_buff of the XDP programs --filter-trace-xdp traces: add --filter-trace-xdp$/);
  // The filter is compiled with the others, as --filter-skb-expr is.
  const filterError = (expr: string, re: RegExp) => assert.throws(() => activateFilter(buildConfig({ filterTraceXdp: true, filterXdpExpr: expr }, []).filter),
    (e: unknown) => e instanceof UsageError && re.test(e.message), expr);
  filterError('xdp->rxq->dev->ifidx == 9', /^--filter-xdp-expr: at column 16: struct net_device has no field 'ifidx' \(did you mean 'ifindex'\?\)$/);
  filterError('skb->len > 1', /^--filter-xdp-expr: at column 1: 'skb': fields start at xdp \(e\.g\. xdp->data\)$/);
  assert.ok(activateFilter(buildConfig({ filterTraceXdp: true, filterXdpExpr: 'xdp->rxq->dev->ifindex == 9' }, []).filter).filter.xdpExpr!.code.length > 0);
  usage({ filterTraceXdp: true, outputXdpMetadata: 'xdp->rxq->dev->name' }, /^--output-xdp-metadata: .*char\[16\]: only numbers and pointers/);
  // Valid on this BTF: the kernel decides.
  const both = cfg({ filterXdpExpr: 'xdp->rxq->dev->ifindex == 9', outputXdpMetadata: 'xdp->rxq->queue_index,xdp->data[0:14]' });
  assert.throws(() => checkXdpExpressions(both, fentry(false)), (e: Error) => !(e instanceof UsageError) && e.message ===
    '--filter-xdp-expr, --output-xdp-metadata: read the xdp_buff of traced XDP programs through fentry, which this kernel refuses (loading: → EPERM); `pktpath doctor` shows what works');
  assert.doesNotThrow(() => checkXdpExpressions(both, fentry(true)));
  assert.doesNotThrow(() => checkXdpExpressions(cfg({ filterXdpExpr: 'xdp->rxq->dev->ifindex == 9' }), fentry(true)));
  assert.doesNotThrow(() => checkXdpExpressions(cfg({}), fentry(false)));
});
