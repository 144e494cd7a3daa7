import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROBES, type ProbeBuild, nextFitting } from '../../src/trace/builds.js';

test('a kind\'s builds: in-place reads first where likely, copies otherwise, the region wide enough either way', () => {
  const tp: readonly ProbeBuild[] = PROBES.tracepoint;
  const tc: readonly ProbeBuild[] = PROBES.tc;
  const nf: readonly ProbeBuild[] = PROBES.netfilter;
  const at = (i: number) => `${tp[i]!.file}${tp[i]!.packetLoads === 'direct' ? ' (in place)' : ''}`;
  assert.equal(at(nextFitting(tp, 0, 100, true)), 'tracepoint.bpf.o (in place)');
  assert.equal(at(nextFitting(tp, 0, 100, false)), 'tracepoint.bpf.o');
  // After a refusal of the in-place build, the same object with copies, then the one for kernels before 6.2.
  assert.equal(at(nextFitting(tp, nextFitting(tp, 0, 100, true) + 1, 100, true)), 'tracepoint.bpf.o');
  assert.equal(at(nextFitting(tp, 1 + nextFitting(tp, 0, 100, false), 100, false)), 'tracepoint_nocast.bpf.o');
  // A filter wider than the narrow regions.
  assert.equal(at(nextFitting(tp, 0, 2000, true)), 'tracepoint_wide.bpf.o (in place)');
  assert.equal(at(nextFitting(tp, 0, 2000, false)), 'tracepoint_wide.bpf.o');
  assert.equal(tc[nextFitting(tc, 0, 0, false)]!.packetLoads, undefined);
  assert.equal(nf[nextFitting(nf, 0, 0, true)]!.packetLoads, 'direct');
});
