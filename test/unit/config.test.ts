import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../src/cli/trace-config.js';
import { commandEnvironment } from '../../src/cli/environment.js';
import { UsageError, parseRingSize } from '../../src/cli/values.js';
import { encodeConfig, encodeTracepointSlots } from '../../src/decode/probe-config.js';
import { CONFIG_LAYOUT, TP_POINT_LAYOUT } from '../../src/decode/layout.js';
import { missingPrivileges } from '../../src/kernel/privileges.js';

test('classic filter flags become one tcpdump expression, ANDed with the user\'s', () => {
  const cfg = buildConfig({
    filterSrcIp: '192.0.2.1', filterDstIp: ' 192.0.2.2 ', filterProto: 'TCP', filterDstPort: '8080',
  }, []);
  assert.equal(cfg.filter.expression, 'ip src host 192.0.2.1 and ip dst host 192.0.2.2 and tcp and dst port 8080');
  assert.equal(cfg.ringSize, 16 << 20);
  assert.deepEqual([...cfg.attach.families].sort(), ['functions', 'netfilter', 'tc', 'tracepoints']);
  assert.equal(buildConfig({ filterPort: '53' }, ['udp', 'or', 'icmp']).filter.expression, '(udp or icmp) and port 53');
  assert.equal(buildConfig({}, ['icmp']).filter.expression, 'icmp');
  assert.equal(buildConfig({}, []).filter.expression, '');
});

test('IPv6 addresses and protocol numbers', () => {
  const cfg = buildConfig({ filterIp: '2001:db8::2', filterProto: '47' }, []);
  assert.equal(cfg.filter.expression, 'ip6 host 2001:db8::2 and (ip proto 47 or ip6 proto 47)');
  assert.equal(buildConfig({ filterProto: '58' }, []).filter.expression, 'icmp6');
});

test('--filter-mark takes VALUE[/MASK]', () => {
  assert.deepEqual(buildConfig({ filterMark: '0x10' }, []).filter.mark, { value: 0x10, mask: 0xffffffff });
  assert.deepEqual(buildConfig({ filterMark: '0x1234/0xff' }, []).filter.mark, { value: 0x34, mask: 0xff });
  assert.deepEqual(buildConfig({ filterMark: '7/15' }, []).filter.mark, { value: 7, mask: 15 });
});

for (const [opts, message] of [
  [{ filterDstIp: '300.1.1.1' }, /is not an IPv4 or IPv6 address/],
  [{ filterSrcIp: '2001:db8:::1' }, /is not an IPv4 or IPv6 address/],
  [{ filterProto: 'bogus' }, /is not a protocol/],
  [{ filterProto: '256' }, /is not a protocol/],
  [{ filterDstPort: '70000' }, /is not a port/],
  [{ filterPort: '0' }, /is not a port/],
  [{ filterSrcPort: '80x' }, /is not a port/],
  [{ filterProto: 'icmp', filterDstPort: '80' }, /need a protocol with ports/],
  [{ filterSrcIp: '192.0.2.1', filterDstIp: '2001:db8::1' }, /mix IPv4 and IPv6/],
  [{ timestamp: 'later' }, /--timestamp/],
  [{ color: 'sometimes' }, /--color/],
  [{ attach: 'funcs' }, /--attach: 'funcs' is not one of tracepoints, functions, tc, netfilter/],
  [{ attach: 'tc,bogus' }, /--attach: 'bogus'/],
  [{ filterFunc: '(' }, /--filter-func/],
  [{ ringSize: '1K' }, /--ring-size/],
  [{ outputLimitLines: '-1' }, /--output-limit-lines/],
  [{ filterMark: 'x' }, /--filter-mark: 'x' is not VALUE\[\/MASK\]/],
  [{ filterMark: '0x100000000' }, /--filter-mark/],
  [{ filterIfname: 'a/b' }, /--filter-ifname/],
] as const) {
  test(`rejects ${JSON.stringify(opts)}`, () => {
    assert.throws(() => buildConfig(opts, []), (e: unknown) => e instanceof UsageError && message.test(e.message));
  });
}

test('--filter-func finds its regex in the names, as pwru; ^…$ anchors it', () => {
  const re = buildConfig({ filterFunc: 'tc:|kfree_skb' }, []).attach.filterFunc!;
  assert.ok(re.test('tc:ingress'));
  assert.ok(re.test('kfree_skb'));
  assert.ok(!re.test('consume_skb'));
  assert.ok(buildConfig({ filterFunc: 'nf:' }, []).attach.filterFunc!.test('nf:ipv4:local_in'));
  const anchored = buildConfig({ filterFunc: '^kfree_skb$' }, []).attach.filterFunc!;
  assert.ok(!anchored.test('kfree_skb_reason'));
});

test('sizes round up to a power of two', () => {
  assert.equal(parseRingSize('--ring-size', '16M'), 16 << 20);
  assert.equal(parseRingSize('--ring-size', '5000'), 8192);
  assert.equal(parseRingSize('--ring-size', '3m'), 4 << 20);
  // The one size grammar: the same units and spellings as --output-file-max-size.
  assert.equal(parseRingSize('--ring-size', '1.5M'), 2 << 20);
  assert.equal(parseRingSize('--ring-size', '64 KiB'), 64 << 10);
  assert.throws(() => parseRingSize('--ring-size', '2G'), /--ring-size: 2G is out of range \(4K-1G\)/);
  assert.throws(() => parseRingSize('--ring-size', '16Q'), /--ring-size: '16Q' is not a size \(e\.g\. 16M\)/);
});

test('the probe configuration is encoded at the offsets of struct config', () => {
  const b = encodeConfig({
    pointId: 7, stack: true, filter: true, skbArg: 3,
    netns: 4026531840, ifindex: 9, mark: { value: 0x34, mask: 0xff }, track: true, snaplen: 128, noTask: true,
  });
  const F = CONFIG_LAYOUT.fields;
  assert.equal(b.length, CONFIG_LAYOUT.size);
  assert.equal(b.readUInt32LE(F.point_id), 7);
  assert.equal(b.readUInt32LE(F.flags), 0x1f); // stack, filter, mark, track, no task
  assert.equal(b.readInt32LE(F.skb_arg), 3);
  assert.equal(b.readUInt32LE(F.netns), 4026531840);
  assert.equal(b.readUInt32LE(F.ifindex), 9);
  assert.equal(b.readUInt32LE(F.mark), 0x34);
  assert.equal(b.readUInt32LE(F.mark_mask), 0xff);
  assert.equal(b.readUInt32LE(F.snaplen), 128);
  const none = encodeConfig({
    pointId: 0, stack: false, filter: false, skbArg: 0, netns: 0, ifindex: 0, mark: null, track: false, snaplen: 0,
  });
  assert.equal(none.readUInt32LE(F.flags), 0);
});

test('tracepoint slots are encoded at the offsets of struct tp_point, unused slots zero', () => {
  const b = encodeTracepointSlots([
    { pointId: 3, frees: false, skbArg: 0, reasonArg: -1, locationArg: -1, devArg: 1 },
    { pointId: 9, frees: true, skbArg: 0, reasonArg: 2, locationArg: 1, devArg: -1 },
  ], 4);
  const F = TP_POINT_LAYOUT.fields;
  const at = (slot: number, field: keyof typeof F) => slot * TP_POINT_LAYOUT.size + F[field];
  assert.equal(b.length, 4 * TP_POINT_LAYOUT.size);
  assert.equal(b.readUInt32LE(at(0, 'point_id')), 3);
  assert.equal(b.readInt32LE(at(0, 'dev_arg')), 1);
  assert.equal(b.readInt32LE(at(0, 'reason_arg')), -1);
  assert.equal(b.readUInt32LE(at(1, 'point_id')), 9);
  assert.equal(b.readUInt32LE(at(1, 'frees')), 1);
  assert.equal(b.readInt32LE(at(1, 'reason_arg')), 2);
  assert.equal(b.readInt32LE(at(1, 'location_arg')), 1);
  assert.ok(b.subarray(2 * TP_POINT_LAYOUT.size).every((x) => x === 0));
  assert.throws(() => encodeTracepointSlots(Array(5).fill({ pointId: 0, frees: false, skbArg: 0, reasonArg: -1, locationArg: -1, devArg: -1 }), 4), /5 tracepoints for 4 slots/);
});

test('privileges are read from the effective capability set', () => {
  assert.equal(missingPrivileges(0x1ffffffffffn), null);
  assert.match(missingPrivileges(0n) ?? '', /CAP_BPF/);
  // CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN without CAP_SYS_ADMIN: cannot enter namespaces.
  assert.match(missingPrivileges((1n << 39n) | (1n << 38n) | (1n << 12n)) ?? '', /CAP_SYS_ADMIN/);
});

test('commands run for the user get back what pktpath\'s start set aside, and only that', () => {
  const ca = '/etc/ssl/certs/ca-certificates.crt';
  assert.deepEqual(commandEnvironment({ PATH: '/bin', PKTPATH_NODE_EXTRA_CA_CERTS: ca }), { PATH: '/bin', NODE_EXTRA_CA_CERTS: ca });
  // Unset before pktpath started: the script's first line set it aside empty.
  assert.deepEqual(commandEnvironment({ PATH: '/bin', PKTPATH_NODE_EXTRA_CA_CERTS: '' }), { PATH: '/bin' });
  // Set again meanwhile (node run by hand with it): that value stays.
  assert.deepEqual(commandEnvironment({ NODE_EXTRA_CA_CERTS: '/x.pem', PKTPATH_NODE_EXTRA_CA_CERTS: ca }), { NODE_EXTRA_CA_CERTS: '/x.pem' });
  assert.deepEqual(commandEnvironment({ PATH: '/bin' }), { PATH: '/bin' });
});
