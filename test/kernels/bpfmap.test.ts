/**
 * --filter-track-bpf-helpers and --output-bpfmap inside a stock kernel
 * (scripts/test-kernels.sh): a CNI-like policy program (fixtures/datapath/
 * policy_map.bpf.c) on a veth's tc ingress looks each datagram up in a policy
 * map and updates a per-source counter map; its helper calls are seen at the
 * kernel functions they land in, with the maps' ids, names, keys and values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapInfos } from '../../src/bpf/loaded.js';
import { Lab, twoHosts } from '../../src/lab/lab.js';
import { startTracer } from '../helpers/tracer.js';
import { ATTACH_MS, BACKENDS, KERNEL, OBJECTS, pktpathPrograms } from './guest.js';

const DENIED = 9999;
const ALLOWED = 7777;

/** Little-endian hex of a u32. */
const u32 = (n: number) => Buffer.from(new Uint32Array([n]).buffer).toString('hex');

test(`${KERNEL}: --filter-track-bpf-helpers --output-bpfmap: a tc program's map lookups and updates, per packet, with ids, names, keys and values`,
  { skip: !BACKENDS.includes('fentry') && 'no fentry here: the kernel refuses tracing BPF programs' }, async () => {
    const lab = new Lab('pm');
    try {
      const { a, b } = twoHosts(lab);
      lab.execSync(b, ['tc', 'qdisc', 'add', 'dev', 'veth-b', 'clsact']);
      lab.execSync(b, ['tc', 'filter', 'add', 'dev', 'veth-b', 'ingress', 'bpf', 'da', 'obj', `${OBJECTS}/policy_map.bpf.o`, 'sec', 'tc']);
      const maps = mapInfos();
      const policyId = maps.find((m) => m.name === 'cni_policy_map')!.id;
      const countersId = maps.find((m) => m.name === 'cni_counters')!.id;
      // A deny rule (7) for 192.0.2.2 port 9999/udp: struct policy_key, struct policy_value.
      const key = ['c0', '00', '02', '02', ...u32(DENIED).match(/../g)!.slice(0, 2), '11', '00'];
      const value = [...u32(1).match(/../g)!, ...u32(7).match(/../g)!];
      lab.execSync(b, ['bpftool', 'map', 'update', 'id', String(policyId), 'key', 'hex', ...key, 'value', 'hex', ...value]);

      const run = await startTracer(['--attach', 'none', '--filter-trace-tc', '--filter-track-bpf-helpers', '--output-bpfmap',
        '--filter-dst-ip', '192.0.2.2', '--filter-proto', 'udp'], ATTACH_MS);
      lab.execSync(a, ['bash', '-c', `for p in ${ALLOWED} ${ALLOWED} ${DENIED}; do echo x > /dev/udp/192.0.2.2/$p; done`]);
      const r = await run.stop();
      assert.equal(r.code, 0, r.stderr);
      const points = [...new Set(r.events.map((e) => `${e.probe.type} ${e.func}`))].join(', ');
      const seen = `${points}\n${r.stderr}`;

      // The program's own verdicts: the deny rule dropped the datagram to 9999.
      const exits = r.events.filter((e) => e.func === 'bpf:cni_map_policy:exit');
      assert.equal(exits.find((e) => e.tuple?.dport === DENIED)?.verdict?.action, 'drop', seen);
      assert.equal(exits.find((e) => e.tuple?.dport === ALLOWED)?.verdict?.action, 'pass', seen);

      // Policy lookups: hash lookups are inlined but for __htab_map_lookup_elem, seen at its exit with what it found.
      const lookups = r.events.filter((e) => e.func === '__htab_map_lookup_elem' && e.bpfmap?.map_id === policyId);
      assert.equal(lookups.length, 3, seen);
      for (const e of lookups) {
        assert.equal(e.probe.type, 'fexit');
        assert.equal(e.bpfmap?.op, 'lookup');
        assert.equal(e.bpfmap?.map_name, 'cni_policy_map');
        assert.equal(e.bpfmap?.key_size, 8);
        assert.match(e.bpfmap?.key_text ?? '', new RegExp(`^\\{daddr=0x20200c0, dport=${e.tuple?.dport}, proto=17, _pad=0\\}$`));
      }
      const denied = lookups.find((e) => e.tuple?.dport === DENIED)!;
      assert.equal(denied.bpfmap?.value, value.join(''));
      assert.equal(denied.bpfmap?.value_text, '{action=1, rule=7}');
      for (const e of lookups.filter((l) => l.tuple?.dport === ALLOWED)) assert.equal(e.bpfmap?.value, null, 'no rule for 7777');

      // Counter updates, one per datagram, each a packet more than the last.
      const updates = r.events.filter((e) => e.func === 'htab_map_update_elem' && e.bpfmap?.map_id === countersId);
      assert.equal(updates.length, 3, seen);
      updates.forEach((e, i) => {
        assert.equal(e.probe.type, 'fentry');
        assert.equal(e.bpfmap?.op, 'update');
        assert.equal(e.bpfmap?.map_name, 'cni_counters');
        assert.equal(e.bpfmap?.key, 'c0000201', 'the source address, 192.0.2.1');
        assert.match(e.bpfmap?.value_text ?? '', new RegExp(`^\\{packets=${i + 1}, bytes=\\d+\\}$`));
        assert.equal(e.tuple?.saddr, '192.0.2.1');
      });
      process.stdout.write(`# ${KERNEL}: helpers: ${points}; e.g. ${denied.func} ${JSON.stringify(denied.bpfmap)}\n`);
    } finally {
      lab.cleanup();
    }
    assert.equal(pktpathPrograms(), 0, 'pktpath\'s programs are gone');
  });
