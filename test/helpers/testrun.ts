/** BPF_PROG_TEST_RUN: runs a loaded program once on a packet and returns its return value. */
import { BpfError } from '../../src/bpf/errors.js';
import type { Fd } from '../../src/bpf/fd.js';
import { progTestRun } from '../../src/bpf/native/libbpf.js';

export function testRun(prog: { fd: Fd; name: string }, data: Uint8Array): number {
  const { rc, retval } = progTestRun(prog.fd.raw, data);
  if (rc < 0) throw new BpfError(`test-running ${prog.name}`, rc);
  return retval;
}
