/** BPF_PROG_TEST_RUN: runs a loaded program once on a packet and returns its return value. */
import { BpfError } from './errors.js';
import { koffi, libbpf } from './native.js';
import type { BpfProgram } from './object.js';

const TestRunOpts = koffi.struct('pktpath_bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'const void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'const void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

type RunFn = (fd: number, opts: Record<string, unknown>) => number;
let bound: RunFn | null = null;

export function testRun(prog: BpfProgram, data: Uint8Array): number {
  const run: RunFn = (bound ??= libbpf.bind('int bpf_prog_test_run_opts(int prog_fd, _Inout_ pktpath_bpf_test_run_opts *opts)') as RunFn);
  const opts: Record<string, unknown> = {
    sz: koffi.sizeof(TestRunOpts), data_in: data, data_out: null, data_size_in: data.length, data_size_out: 0,
    ctx_in: null, ctx_out: null, ctx_size_in: 0, ctx_size_out: 0, retval: 0, repeat: 1, duration: 0, flags: 0,
    cpu: 0, batch_size: 0,
  };
  const rc = run(prog.fd, opts);
  if (rc < 0) throw new BpfError(`test-running ${prog.name}`, rc);
  return opts.retval as number;
}
