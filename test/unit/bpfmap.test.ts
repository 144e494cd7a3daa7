/**
 * --output-bpfmap's pure parts: map keys and values read with BTF (the
 * fixture policy program's own BTF: its maps' key and value structs), the
 * section's reading of them, bounded, and the map operations told from the
 * kernel's prototypes (--filter-track-bpf-helpers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Btf } from '../../src/bpf/btf/btf.js';
import { formatBtfValue } from '../../src/bpf/btf/value.js';
import { vmlinuxBtf } from '../../src/bpf/btf/vmlinux.js';
import { helperKind } from '../../src/kernel/helpers.js';
import { BPFMAP_BYTES, bpfmapOperation, bpfmapSection } from '../../src/output/sections/bpfmap.js';
import { readElfSection } from '../helpers/elf.js';
import { root } from '../helpers/probe-btf.js';

const fixture = Btf.parse(readElfSection(join(root, 'probes/build/policy_map.bpf.o'), '.BTF')!);
const struct = (name: string) => fixture.findOne(name, 'STRUCT')!;

test('a map key and value read by their BTF struct, a cut one as far as it goes', () => {
  const key = Uint8Array.from([192, 0, 2, 2, 0x0f, 0x27, 17, 0]);
  assert.equal(formatBtfValue(fixture, struct('policy_key'), key), '{daddr=0x20200c0, dport=9999, proto=17, _pad=0}');
  const count = new Uint8Array(16);
  new DataView(count.buffer).setBigUint64(0, 3n, true);
  new DataView(count.buffer).setBigUint64(8, 252n, true);
  assert.equal(formatBtfValue(fixture, struct('flow_count'), count), '{packets=3, bytes=252}');
  assert.equal(formatBtfValue(fixture, struct('flow_count'), count.subarray(0, 12)), '{packets=3, bytes=fc000000…}');
  assert.equal(formatBtfValue(fixture, struct('flow_count'), count.subarray(0, 8)), '{packets=3, bytes=…}');
});

test('the section: hex of at most 64 bytes, BTF text where the map has BTF, names kept raw for the printers to escape', () => {
  const raw = { id: 12, name: 'cni\x1bmap', op: 'update' as const, keySize: 8, valueSize: 200, key: new Uint8Array(BPFMAP_BYTES).fill(1), value: new Uint8Array(BPFMAP_BYTES).fill(2) };
  const m = bpfmapOperation(raw, null);
  assert.equal(m.key, '01'.repeat(8));
  assert.equal(m.value, '02'.repeat(BPFMAP_BYTES));
  assert.equal(m.keyText, null);
  assert.equal(bpfmapSection.text!(m), `map#12 cni\\x1bmap update key=${'01'.repeat(8)} value=${'02'.repeat(BPFMAP_BYTES)}…`);
  assert.deepEqual(bpfmapSection.fromJson(bpfmapSection.toJson(m)), m);
  const typed = bpfmapOperation({ ...raw, keySize: 8, valueSize: 8, value: null, op: 'lookup' },
    { id: 12, name: 'cni_policy_map', keySize: 8, valueSize: 8, btf: { btf: fixture, key: struct('policy_key'), value: struct('policy_value') } });
  assert.equal(typed.keyText, '{daddr=0x1010101, dport=257, proto=1, _pad=1}');
  assert.equal(typed.value, null);
  assert.equal(typed.valueText, null);
});

test('map operations are told from the kernel\'s prototypes; other helpers are helpers', (t) => {
  const btf = vmlinuxBtf();
  if (!btf) return t.skip('no kernel BTF');
  assert.equal(helperKind(btf, '__htab_map_lookup_elem'), 'htab-lookup');
  assert.equal(helperKind(btf, 'htab_map_update_elem'), 'map-update');
  assert.equal(helperKind(btf, 'htab_map_delete_elem'), 'map-delete');
  assert.equal(helperKind(btf, 'array_map_update_elem'), 'map-update');
  assert.equal(helperKind(btf, 'htab_percpu_map_lookup_elem'), 'map-lookup');
  assert.equal(helperKind(btf, 'bpf_redirect'), 'helper');
  assert.equal(helperKind(btf, 'no_such_function'), 'helper');
});
