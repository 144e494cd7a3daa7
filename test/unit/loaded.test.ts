/**
 * The offsets src/bpf/loaded.ts reads kernel objects with (struct
 * bpf_prog_info, bpf_link_info, bpf_map_info) and the nftables numbers
 * src/kernel/nftables.ts writes, held against the running kernel's BTF.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vmlinuxBtf } from '../../src/bpf/btf/vmlinux.js';
import { BTF_INFO, LINK_INFO, MAP_INFO, PROG_INFO } from '../../src/bpf/loaded.js';

const btf = vmlinuxBtf();

function offsets(struct: string, fields: Record<string, number>): void {
  const s = btf!.structLayout(struct);
  assert.ok(s, `struct ${struct}`);
  for (const [field, offset] of Object.entries(fields)) {
    if (field === 'size' || field === 'union') continue;
    assert.equal(s.members.get(field)?.offset, offset, `offsetof(struct ${struct}, ${field})`);
  }
}

test('struct bpf_prog_info, bpf_link_info and bpf_map_info are read where the kernel has them', (t) => {
  if (!btf) return t.skip('no kernel BTF');
  offsets('bpf_prog_info', PROG_INFO);
  offsets('bpf_link_info', LINK_INFO);
  offsets('bpf_map_info', MAP_INFO);
  offsets('bpf_btf_info', BTF_INFO);
  // The type-specific union of bpf_link_info follows type, id and prog_id.
  const link = btf.structLayout('bpf_link_info')!;
  assert.equal(Math.max(...[...link.members.values()].map((m) => m.offset)), LINK_INFO.union);
});

test('the nftables numbers pktpath writes are the kernel\'s', (t) => {
  if (!btf) return t.skip('no kernel BTF');
  const value = (e: string, name: string) => [...(btf.enumValues(e) ?? new Map())].find(([, n]) => n === name)?.[0];
  assert.equal(value('nf_tables_msg_types', 'NFT_MSG_NEWTABLE'), 0);
  assert.equal(value('nf_tables_msg_types', 'NFT_MSG_NEWCHAIN'), 3);
  assert.equal(value('nf_tables_msg_types', 'NFT_MSG_NEWRULE'), 6);
  assert.equal(value('nf_tables_msg_types', 'NFT_MSG_TRACE'), 17);
  assert.equal(value('nft_table_flags', 'NFT_TABLE_F_OWNER'), 2);
  assert.equal(value('nft_meta_keys', 'NFT_META_NFTRACE'), 12);
  assert.equal(value('nft_meta_keys', 'NFT_META_L4PROTO'), 16);
  assert.equal(value('nft_meta_keys', 'NFT_META_NFPROTO'), 15);
  assert.equal(value('nft_meta_keys', 'NFT_META_MARK'), 3);
  assert.equal(value('nfnetlink_groups', 'NFNLGRP_NFTRACE'), 9);
  assert.equal(value('nft_trace_attributes', 'NFTA_TRACE_NETWORK_HEADER'), 8);
  assert.equal(value('nft_trace_attributes', 'NFTA_TRACE_NFPROTO'), 15);
});
