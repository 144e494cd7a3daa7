/**
 * The bpf(2) attrs src/bpf/attr.ts packs, held against the kernel's BTF:
 * each command's fields where union bpf_attr has them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vmlinuxBtf } from '../../src/bpf/btf/vmlinux.js';
import { ATTR, packLinkCreate } from '../../src/bpf/attr.js';

const btf = vmlinuxBtf();

/** The offset of a member of union bpf_attr, through named members (`link_create`, `netfilter`, `pf`). */
function offsetOf(path: string[]): number | undefined {
  let id = btf!.findOne('bpf_attr', 'UNION')!;
  let offset = 0;
  for (const name of path) {
    const m = btf!.membersOf(id).get(name);
    if (!m) return undefined;
    offset += m.offset;
    id = m.typeId;
  }
  return offset;
}

function holds(prefix: string[], fields: Record<string, number>): void {
  for (const [field, at] of Object.entries(fields)) assert.equal(offsetOf([...prefix, field]), at, `bpf_attr.${[...prefix, field].join('.')}`);
}

test('each command\'s attr is packed where union bpf_attr has its fields', (t) => {
  if (!btf) return t.skip('no kernel BTF');
  holds([], ATTR.getId);
  holds([], ATTR.getFdById);
  holds(['info'], ATTR.info);
  holds(['query'], ATTR.query);
  holds(['link_create'], ATTR.linkCreate);
  holds(['link_create', 'netfilter'], ATTR.linkCreateNetfilter);
  holds(['link_create', 'kprobe_multi'], ATTR.linkCreateKprobeMulti);
  holds(['enable_stats'], ATTR.enableStats);
});

test('a kprobe-multi link\'s attr: at the functions\' returns, BPF_F_KPROBE_MULTI_RETURN in its flags', () => {
  const entry = packLinkCreate(7, 0, 42, { kind: 'kprobe-multi', count: 3, syms: 0x1000n });
  const exit = packLinkCreate(7, 0, 42, { kind: 'kprobe-multi', count: 3, syms: 0x1000n, retprobe: true });
  assert.deepEqual([entry.readUInt32LE(16), entry.readUInt32LE(20), entry.readBigUInt64LE(24)], [0, 3, 0x1000n]);
  assert.deepEqual([exit.readUInt32LE(16), exit.readUInt32LE(20), exit.readBigUInt64LE(24)], [1, 3, 0x1000n]);
});

test('a netfilter link\'s attr: program, attach type, family, hook and a negative priority', () => {
  const attr = packLinkCreate(7, 0, 45, { kind: 'netfilter', pf: 10, hooknum: 1, priority: -199 });
  assert.deepEqual([attr.readUInt32LE(0), attr.readUInt32LE(8), attr.readUInt32LE(16), attr.readUInt32LE(20), attr.readInt32LE(24)], [7, 45, 10, 1, -199]);
});
