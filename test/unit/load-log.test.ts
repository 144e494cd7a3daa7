/** What a refused load's log says, read in one place (src/bpf/log.ts): why it was refused, and which helpers the verifier would not let it call. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refusalReason, refusesHelper } from '../../src/bpf/log.js';

/** A tc program refused bpf_get_current_comm, as libbpf 1.1 quotes the verifier (6.12). */
const TASK_REFUSED = [
  "prog 'tc_observe': BPF program load failed: Invalid argument",
  "prog 'tc_observe': -- BEGIN PROG LOAD LOG --",
  '0: R1=ctx() R10=fp0',
  '; int tc_observe(struct __sk_buff *skb) @ tc.bpf.c:21',
  'program of this type cannot use helper bpf_get_current_comm#16',
  'processed 112 insns (limit 1000000) max_states_per_insn 0 total_states 6 peak_states 6 mark_read 3',
  '-- END PROG LOAD LOG --',
  "prog 'tc_observe': failed to load: -22",
  'failed to load object \'tc observer\'',
];

test("a refusal's reason is the verifier's last word, past libbpf's frame and the statistics", () => {
  assert.equal(refusalReason(TASK_REFUSED), 'program of this type cannot use helper bpf_get_current_comm#16');
  assert.equal(refusalReason(['  R1 invalid mem access \'scalar\'  ', 'processed 9 insns (limit 1000000)']), "R1 invalid mem access 'scalar'");
  assert.equal(refusalReason([]), undefined);
  assert.equal(refusalReason(['-- END PROG LOAD LOG --', "failed to load object 'x'"]), undefined);
});

test('a helper the program type may not call (or the kernel lacks) is told by its name', () => {
  const task = ['bpf_get_current_pid_tgid', 'bpf_get_current_comm'];
  assert.equal(refusesHelper(TASK_REFUSED, task), true);
  assert.equal(refusesHelper(['unknown func bpf_get_current_pid_tgid#14'], task), true);
  // Another helper refused, or no helper at all: not the task's.
  assert.equal(refusesHelper(['program of this type cannot use helper bpf_skb_load_bytes#26'], task), false);
  assert.equal(refusesHelper(["R1 invalid mem access 'scalar'"], task), false);
  assert.equal(refusesHelper(['program of this type cannot use helper bpf_get_current_comm_x#99'], task), false);
});
