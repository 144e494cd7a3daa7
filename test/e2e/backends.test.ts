/**
 * Function backends on this kernel, which has no kprobes and refuses fentry:
 * auto observes the path at tracepoints, tc and netfilter and says why when
 * asked; an explicit backend, or --output-retval (fexit), fails with one line, exit 1, nothing attached.
 * (The backends themselves are tested in stock kernels: `npm run test:kernels`.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { programs } from '../../src/bpf/loaded.js';
import { functionBackends } from '../../src/kernel/functions.js';
import { pktpathPrivately } from '../helpers/tracer.js';

const usable = functionBackends().filter((b) => b.ok);
const pktpathPrograms = () => programs().filter((p) => p.name.startsWith('pktpath_')).length;
/** In a private network namespace: nothing of the machine's own is observed. */
const pktpath = (args: string[]) =>
  spawnSync(...pktpathPrivately(args), { encoding: 'utf8', timeout: 30_000 });

for (const backend of ['kprobe', 'kprobe-multi', 'fentry']) {
  test(`--backend ${backend} where the kernel refuses it: one line, exit 1, nothing attached`, { skip: usable.some((b) => b.backend === backend) && 'this kernel allows it' }, () => {
    const before = pktpathPrograms();
    const r = pktpath(['--backend', backend, '--duration', '1']);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^pktpath: --backend ${backend}: this kernel refuses it \\(.+\\); .pktpath doctor.`));
    assert.equal(pktpathPrograms(), before);
  });
}

test('--backend auto: tracepoints, tc and netfilter, and why not functions when they were asked for', { skip: usable.length > 0 && 'this kernel probes functions' }, () => {
  const quiet = pktpath(['list']);
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stderr, /functions:/);
  assert.match(quiet.stdout, /^netif_receive_skb$/m);
  const asked = pktpath(['list', '--backend', 'auto']);
  assert.equal(asked.status, 0, asked.stderr);
  assert.match(asked.stderr, /functions: this kernel lets no backend probe them \(kprobe-multi: .*; kprobe: .*; fentry: .*\); the path is observed at tracepoints, tc and netfilter/);
  assert.match(asked.stdout, /^tc:ingress$/m);
});

test('list --funcs: skb functions with the skb\'s argument, narrowed by --filter-func', () => {
  const r = pktpath(['list', '--funcs', '--filter-func', '^(ip_rcv|__ip_local_out)$']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['__ip_local_out\tskb=arg3', 'ip_rcv\tskb=arg1']);
  assert.match(r.stderr, /^pktpath: 2 skb functions \(/);
  const none = pktpath(['list', '--funcs', '--filter-func', '^no_such_function$']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^pktpath: --filter-func: '\^no_such_function\$' finds no skb function/);
});

test('--output-retval where the kernel refuses fexit and kretprobes: one line naming the refusal, exit 1, nothing attached', { skip: usable.length > 0 && 'this kernel allows fexit or kretprobes' }, () => {
  const before = pktpathPrograms();
  const r = pktpath(['--output-retval', '--duration', '1']);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^pktpath: --output-retval: return values need fexit or kretprobes, which this kernel refuses \((?=.*kprobe-multi: )(?=.*kprobe: )(?=.*fentry: ).+\); .pktpath doctor./);
  assert.equal(pktpathPrograms(), before);
  const usage = pktpath(['--output-retval', '--attach', 'tracepoints', '--duration', '1']);
  assert.equal(usage.status, 2, usage.stderr);
  assert.match(usage.stderr, /^pktpath: --output-retval: return values are those of kernel functions: --attach needs functions\n$/);
});

test('--kmods naming a module without BTF: one line, exit 2, nothing attached', () => {
  const before = pktpathPrograms();
  const r = pktpath(['--kmods', 'pktpath_no_such_module', '--duration', '1']);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, 'pktpath: --kmods: module \'pktpath_no_such_module\' is not loaded with BTF (no /sys/kernel/btf/pktpath_no_such_module): ' +
    'load it (modprobe pktpath_no_such_module) or leave it out\n');
  assert.equal(pktpathPrograms(), before);
});
