import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, buildConfig, parseSize } from '../../src/cli/config.js';
import { CONFIG_LAYOUT, encodeConfig } from '../../src/decode/config.js';
import { missingPrivileges } from '../../src/kernel/privileges.js';

test('classic filter flags become a tuple filter', () => {
  const cfg = buildConfig({
    filterSrcIp: '192.0.2.1', filterDstIp: ' 192.0.2.2 ', filterProto: 'TCP', filterDstPort: '8080',
  }, []);
  assert.equal(cfg.filter.srcIp?.text, '192.0.2.1');
  assert.deepEqual([...cfg.filter.dstIp!.bytes], [192, 0, 2, 2]);
  assert.equal(cfg.filter.proto, 6);
  assert.equal(cfg.filter.dstPort, 8080);
  assert.equal(cfg.ringSize, 16 << 20);
  assert.deepEqual([...cfg.families].sort(), ['funcs', 'netfilter', 'tc', 'tracepoints']);
});

test('IPv6 addresses and protocol numbers', () => {
  const cfg = buildConfig({ filterIp: '2001:db8::2', filterProto: '58' }, []);
  assert.equal(cfg.filter.ip?.l3, 6);
  assert.equal(cfg.filter.ip?.bytes[15], 2);
  assert.equal(cfg.filter.proto, 58);
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
  [{ backend: 'dtrace' }, /--backend/],
  [{ attach: 'tc,bogus' }, /--attach: 'bogus'/],
  [{ filterFunc: '(' }, /--filter-func/],
  [{ ringSize: '1K' }, /--ring-size/],
  [{ outputLimitLines: '-1' }, /--output-limit-lines/],
] as const) {
  test(`rejects ${JSON.stringify(opts)}`, () => {
    assert.throws(() => buildConfig(opts, []), (e: unknown) => e instanceof UsageError && message.test(e.message));
  });
}

test('--filter-func matches whole names', () => {
  const re = buildConfig({ filterFunc: 'tc:.*|kfree_skb' }, []).filterFunc!;
  assert.ok(re.test('tc:ingress'));
  assert.ok(re.test('kfree_skb'));
  assert.ok(!re.test('kfree_skb_reason'));
  assert.ok(!re.test('nf:ipv4:tc:x'));
});

test('sizes round up to a power of two', () => {
  assert.equal(parseSize('--ring-size', '16M'), 16 << 20);
  assert.equal(parseSize('--ring-size', '5000'), 8192);
  assert.equal(parseSize('--ring-size', '3m'), 4 << 20);
});

test('the probe configuration is encoded at the offsets of struct config', () => {
  const cfg = buildConfig({ filterDstIp: '2001:db8::2', filterProto: 'udp', filterSrcPort: '53', filterPort: '5353' }, []);
  const b = encodeConfig({ pointId: 7, stack: true, skbArg: 3, reasonArg: 2, locationArg: -1, devArg: 1, filter: cfg.filter });
  const F = CONFIG_LAYOUT.fields;
  const FF = CONFIG_LAYOUT.filter.fields;
  assert.equal(b.length, CONFIG_LAYOUT.size);
  assert.equal(b.readUInt32LE(F.point_id), 7);
  assert.equal(b.readUInt32LE(F.flags), 1);
  assert.equal(b.readInt32LE(F.skb_arg), 3);
  assert.equal(b.readInt32LE(F.location_arg), -1);
  assert.equal(b.readInt32LE(F.dev_arg), 1);
  assert.equal(b.readUInt32LE(F.has_filter), 1);
  assert.equal(b[F.filter + FF.daddr_l3], 6);
  assert.equal(b[F.filter + FF.daddr + 15], 2);
  assert.equal(b[F.filter + FF.saddr_l3], 0);
  assert.equal(b[F.filter + FF.l4proto], 17);
  assert.equal(b[F.filter + FF.has_l4proto], 1);
  assert.equal(b.readUInt16LE(F.filter + FF.sport), 53);
  assert.equal(b.readUInt16LE(F.filter + FF.port), 5353);
  const none = encodeConfig({ pointId: 0, stack: false, skbArg: 0, reasonArg: -1, locationArg: -1, devArg: -1, filter: {} });
  assert.equal(none.readUInt32LE(F.has_filter), 0);
});

test('privileges are read from the effective capability set', () => {
  assert.equal(missingPrivileges(0x1ffffffffffn), null);
  assert.match(missingPrivileges(0n) ?? '', /CAP_BPF/);
  // CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN without CAP_SYS_ADMIN: cannot enter namespaces.
  assert.match(missingPrivileges((1n << 39n) | (1n << 38n) | (1n << 12n)) ?? '', /CAP_SYS_ADMIN/);
});
