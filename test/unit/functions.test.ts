import { test } from 'node:test';
import assert from 'node:assert/strict';
import { btfSkbFunctions, parseFilterFunctions, parseKprobeBlacklist, probeableFunctions } from '../../src/kernel/functions.js';

test('discovery on the running kernel\'s BTF: skb functions with the skb\'s position', () => {
  const all = btfSkbFunctions();
  const byName = new Map(all.map((f) => [f.name, f]));
  assert.ok(all.length > 500, `only ${all.length} skb functions`);
  assert.equal(byName.get('ip_rcv')?.skbArg, 0);
  assert.equal(byName.get('ip_local_deliver')?.skbArg, 0);
  // __ip_local_out(struct net *, struct sock *, struct sk_buff *)
  assert.equal(byName.get('__ip_local_out')?.skbArg, 2);
  assert.equal(byName.get('ip_output')?.skbArg, 2);
  // Functions that take no skb are not there.
  assert.ok(!byName.has('tcp_v4_connect'));
  assert.equal(new Set(all.map((f) => f.name)).size, all.length, 'a name listed twice');
});

test('available_filter_functions and the kprobe blacklist narrow the list', () => {
  const filter = parseFilterFunctions('ip_rcv\nip_local_deliver\nnf_ct_foo [nf_conntrack]\n');
  assert.deepEqual([...filter], ['ip_rcv', 'ip_local_deliver', 'nf_ct_foo']);
  const blacklist = parseKprobeBlacklist('0xffffffff81000000-0xffffffff81000010\tip_local_deliver\n');
  assert.deepEqual([...blacklist], ['ip_local_deliver']);
  const all = [
    { name: 'ip_rcv', skbArg: 0, module: null }, { name: 'ip_local_deliver', skbArg: 0, module: null },
    { name: 'skb_inlined', skbArg: 0, module: null }, { name: 'nf_ct_foo', skbArg: 1, module: 'nf_conntrack' },
  ];
  assert.deepEqual(probeableFunctions(all, filter, blacklist).map((f) => f.name), ['ip_rcv', 'nf_ct_foo']);
  // Unreadable lists (no ftrace): the BTF list stands.
  assert.equal(probeableFunctions(all, null, null).length, 4);
});
