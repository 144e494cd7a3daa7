/**
 * What widens --filter-track-skb and reports functions without an skb, as
 * planned: --filter-track-skb-by-stackid, the copy functions' exits (or the
 * line saying they are lost), --filter-non-skb-funcs on fentry only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../src/cli/trace-config.js';
import type { KernelView } from '../../src/kernel/view.js';
import { planProbes } from '../../src/plan/plan.js';
import { trackingLine } from '../../src/trace/status.js';

const backends = (ok: string[]) => (['kprobe-multi', 'kprobe', 'fentry'] as const).map((backend) =>
  ({ backend, ok: ok.includes(backend), detail: ok.includes(backend) ? 'works' : 'loading: feature_fentry → EPERM' }));
const discovery = {
  functions: ['ip_rcv', 'icmp_rcv', 'skb_clone', 'skb_copy', 'skb_copy_expand'].map((name) => ({ name, skbArg: 0, module: null })),
  filteredBy: 'test',
};
const view = (ok: string[]): KernelView => ({
  functions: { backends: backends(ok), discovery },
  tracepoints: new Map(),
  features: { tracing: true, tcx: true, netfilter: true },
  namespaces: [],
});

test('--filter-track-skb-by-stackid follows with --filter-track-skb, as pwru\'s follows skbs', () => {
  const cfg = buildConfig({ filterTrackSkbByStackid: true }, []);
  assert.equal(cfg.filter.trackSkb, true);
  assert.equal(cfg.filter.trackStack, true);
  assert.equal(cfg.attach.trackSkb, true);
  assert.equal(buildConfig({ filterTrackSkb: true }, []).filter.trackStack, false);
});

test('--filter-track-skb: the copy functions the kernel has, where fexit is allowed; else one line of what is lost', () => {
  const cfg = buildConfig({ filterTrackSkb: true }, []);
  const plan = planProbes(cfg.attach, view(['kprobe-multi', 'fentry']));
  assert.deepEqual(plan.copies, ['skb_clone', 'skb_copy', 'skb_copy_expand']);
  assert.ok(!plan.notes.some((n) => /copies/.test(n)));
  const refused = planProbes(cfg.attach, view(['kprobe']));
  assert.equal(refused.copies, undefined);
  assert.deepEqual(refused.notes.filter((n) => /copies/.test(n)), ['--filter-track-skb: copies of followed skbs (skb_copy, pskb_copy, skb_copy_expand) ' +
    'are not followed: this kernel refuses fexit (loading: feature_fentry → EPERM); clones are, by the data they share']);
  assert.equal(planProbes(buildConfig({}, []).attach, view(['fentry'])).copies, undefined);
});

test('--filter-non-skb-funcs: names as pwru (comma-separated, repeatable); the skb functions go to fentry alone', () => {
  const cfg = buildConfig({ filterNonSkbFuncs: ['fib_table_lookup, nf_hook_slow', 'fib_table_lookup'], filterFunc: '^i' }, []);
  assert.deepEqual(cfg.attach.nonSkbFuncs, ['fib_table_lookup', 'nf_hook_slow']);
  const plan = planProbes(cfg.attach, view(['kprobe-multi', 'kprobe', 'fentry']));
  assert.deepEqual(plan.nonSkbFuncs, ['fib_table_lookup', 'nf_hook_slow']);
  assert.deepEqual(plan.functions.map((f) => f.name), ['ip_rcv', 'icmp_rcv']);
  assert.deepEqual(plan.functionBackends, ['fentry']);
  assert.deepEqual(planProbes(buildConfig({}, []).attach, view(['kprobe-multi', 'fentry'])).nonSkbFuncs, undefined);
  assert.throws(() => buildConfig({ filterNonSkbFuncs: ' , ' }, []), /^UsageError: --filter-non-skb-funcs: name at least one kernel function/);
  assert.throws(() => buildConfig({ filterNonSkbFuncs: 'a;b' }, []), /^UsageError: --filter-non-skb-funcs: 'a;b' is not a kernel function's name/);
});

test('the tracking line says how many were taken up by their stack, and how many clones and copies were seen made', () => {
  assert.match(trackingLine({ added: 9, freed: 9, stale: 0, moved: 1, live: 0, byStack: 2, copied: 3 }),
    /followed 9 skbs \(1 on past a move of their data, 2 taken up on a followed skb's kernel stack, 3 clones and copies seen made\): 9 forgotten/);
  assert.match(trackingLine({ added: 1, freed: 1, stale: 0, moved: 0, live: 0, byStack: 0, copied: 0 }), /followed 1 skbs: 1 forgotten/);
});
