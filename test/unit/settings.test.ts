/**
 * A namespace's settings: rtnetlink dumps parsed from bytes built here as the
 * kernel lays them out, sysctl values read bounded, device names checked
 * before a path is made of them, the `settings` record's JSON, schema and
 * inverse, its text, and which record applied to an event.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attr, attrString, attrU32, nested } from '../../src/kernel/netlink.js';
import { ipText, parseAddress, parseLink, parseRoute, parseRule } from '../../src/kernel/rtnl-config.js';
import { type NetnsSettings, isPathSafeDeviceName, readSysctl } from '../../src/kernel/settings.js';
import { jsonText } from '../../src/output/escape.js';
import {
  type SettingsRecord, SettingsTimeline, settingsAt, settingsBlock, settingsChanges, settingsFromJson, settingsNoticeText, toJsonSettings,
} from '../../src/output/settings.js';
import { classify } from '../../src/regress/records.js';
import { validateJsonLine } from '../helpers/schema.js';

const AF_INET = 2;
const AF_INET6 = 10;
const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));
const ip6 = (words: number[]) => {
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
};

function ifinfomsg(ifindex: number, flags: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(flags, 8);
  return b;
}

function rtmsg(family: number, dstLen: number, table: number, type: number): Buffer {
  return Buffer.from([family, dstLen, 0, 0, table, 4, 0, type, 0, 0, 0, 0]);
}

test('a link message: name, MTU, up, kind, link-layer address', () => {
  const payload = Buffer.concat([
    ifinfomsg(7, 0x1 | 0x1000),
    attrString(3, 'veth-r0'),
    attrU32(4, 1400),
    attr(1, Buffer.from([2, 0, 0, 0, 0, 1])),
    nested(18, attrString(1, 'veth')),
  ]);
  assert.deepEqual(parseLink(payload), {
    ifindex: 7, name: 'veth-r0', mtu: 1400, up: true, kind: 'veth', addresses: [], lladdr: '02:00:00:00:00:01',
  });
  const down = parseLink(Buffer.concat([ifinfomsg(1, 0), attrString(3, 'lo'), attrU32(4, 65536)]));
  assert.deepEqual(down, { ifindex: 1, name: 'lo', mtu: 65536, up: false, kind: '', addresses: [], lladdr: null });
  assert.equal(parseLink(Buffer.alloc(8)), null, 'a payload shorter than ifinfomsg is no link');
});

test('address messages: IFA_LOCAL before IFA_ADDRESS, IPv6 compressed', () => {
  const v4 = Buffer.concat([Buffer.from([AF_INET, 24, 0, 0, 3, 0, 0, 0]), attr(1, ip4('192.0.2.9')), attr(2, ip4('192.0.2.1'))]);
  assert.deepEqual(parseAddress(v4), { ifindex: 3, family: 4, address: '192.0.2.1/24' });
  const v6 = Buffer.concat([Buffer.from([AF_INET6, 64, 0, 0, 3, 0, 0, 0]), attr(1, ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]))]);
  assert.deepEqual(parseAddress(v6), { ifindex: 3, family: 6, address: '2001:db8::1/64' });
  assert.equal(ipText(AF_INET6, ip6([0, 0, 0, 0, 0, 0, 0, 0])), '::');
  assert.equal(ipText(AF_INET6, ip6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1])), '2001:db8:0:1::1');
  assert.equal(ipText(AF_INET6, ip6([0x2001, 0xdb8, 1, 2, 3, 4, 5, 6])), '2001:db8:1:2:3:4:5:6');
  assert.equal(parseAddress(Buffer.from([17, 0, 0, 0, 3, 0, 0, 0])), null, 'a family other than IPv4/IPv6 is left out');
});

test('route messages: prefix, gateway, device, table, type, source; default and multipath', () => {
  const names = new Map([[2, 'eth0'], [3, 'veth0']]);
  const plain = Buffer.concat([rtmsg(AF_INET, 24, 254, 1), attr(15, Buffer.from([254, 0, 0, 0])), attr(1, ip4('192.0.2.0')),
    attrU32(4, 3), attr(7, ip4('192.0.2.1'))]);
  assert.deepEqual(parseRoute(plain, names),
    { family: 4, table: 'main', dst: '192.0.2.0/24', gateway: null, dev: 'veth0', type: 'unicast', src: '192.0.2.1' });
  const dflt = Buffer.concat([rtmsg(AF_INET, 0, 254, 1), attr(5, ip4('192.0.2.254')), attrU32(4, 2)]);
  assert.equal(parseRoute(dflt, names)?.dst, '0.0.0.0/0');
  assert.equal(parseRoute(dflt, names)?.gateway, '192.0.2.254');
  const local = Buffer.concat([rtmsg(AF_INET, 32, 255, 2), attr(1, ip4('192.0.2.1')), attrU32(4, 3)]);
  assert.equal(parseRoute(local, names)?.table, 'local');
  assert.equal(parseRoute(local, names)?.type, 'local');
  const hop = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.alloc(4), attr(5, ip4('198.51.100.1'))]);
  hop.writeUInt16LE(hop.length, 0);
  hop.writeInt32LE(2, 4);
  const multipath = Buffer.concat([rtmsg(AF_INET, 24, 100, 1), attrU32(15, 100), attr(1, ip4('203.0.113.0')), attr(9, hop)]);
  assert.deepEqual(parseRoute(multipath, names),
    { family: 4, table: '100', dst: '203.0.113.0/24', gateway: '198.51.100.1', dev: 'eth0', type: 'unicast', src: null });
  const v6 = Buffer.concat([rtmsg(AF_INET6, 0, 254, 7), attrU32(15, 254)]);
  assert.deepEqual(parseRoute(v6, names), { family: 6, table: 'main', dst: '::/0', gateway: null, dev: '', type: 'unreachable', src: null });
  assert.equal(parseRoute(Buffer.concat([rtmsg(128, 0, 254, 1)]), names), null, 'multicast routing families are left out');
});

test('rule messages: selector as ip rule says it, table or action', () => {
  const hdr = (family: number, dstLen: number, srcLen: number, table: number, action: number, flags = 0) => {
    const b = Buffer.from([family, dstLen, srcLen, 0, table, 0, 0, action, 0, 0, 0, 0]);
    b.writeUInt32LE(flags, 8);
    return b;
  };
  assert.deepEqual(parseRule(Buffer.concat([hdr(AF_INET, 0, 0, 255, 1), attrU32(15, 255)])),
    { family: 4, priority: 0, table: 'local', selector: 'from all' });
  const marked = Buffer.concat([hdr(AF_INET, 0, 24, 0, 1, 0x2), attrU32(6, 100), attr(2, ip4('192.0.2.0')), attrString(3, 'veth0'),
    attrU32(10, 1), attrU32(16, 0xff), attrU32(15, 1000)]);
  assert.deepEqual(parseRule(marked),
    { family: 4, priority: 100, table: '1000', selector: 'not from 192.0.2.0/24 fwmark 0x1/0xff iif veth0' });
  assert.equal(parseRule(Buffer.concat([hdr(AF_INET6, 0, 0, 0, 6), attrU32(6, 5)]))?.table, 'blackhole');
  assert.equal(parseRule(Buffer.concat([hdr(AF_INET, 0, 0, 0, 2), attrU32(4, 300)]))?.table, 'goto 300');
});

test('device names stand in a sysctl path only when the kernel could have made them', () => {
  for (const good of ['veth0', 'lxc-a', 'eth0.100', 'x'.repeat(15)]) assert.ok(isPathSafeDeviceName(good), good);
  for (const bad of ['', '.', '..', 'a/b', '../all', 'all', 'default', 'a b', 'a:1', 'x'.repeat(16), 'é'.repeat(8), 'a\0b']) {
    assert.ok(!isPathSafeDeviceName(bad), JSON.stringify(bad));
  }
});

test('a sysctl value is read bounded, as one integer or not at all', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-sysctl-'));
  try {
    writeFileSync(join(dir, 'one'), '1\n');
    writeFileSync(join(dir, 'neg'), '-1\n');
    writeFileSync(join(dir, 'two'), '4096\t131072\t6291456\n');
    writeFileSync(join(dir, 'long'), '7'.repeat(100000));
    assert.equal(readSysctl(join(dir, 'one')), 1);
    assert.equal(readSysctl(join(dir, 'neg')), -1);
    assert.equal(readSysctl(join(dir, 'two')), null, 'several values are not one');
    assert.equal(readSysctl(join(dir, 'long')), null, 'read no further than a value can be');
    assert.equal(readSysctl(join(dir, 'missing')), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const T0 = 1_796_000_000_000_000_000n;

function settings(over: Partial<{ forward: number; rp: number; devRp: number; mtu: number; name: string }> = {}): NetnsSettings {
  const name = over.name ?? 'veth-r0';
  return {
    ipv4: {
      forwarding: over.forward ?? 0,
      conf: Object.fromEntries([
        ['all', { forwarding: over.forward ?? 0, rp_filter: over.rp ?? 0, proxy_arp: 0, arp_ignore: 0, arp_announce: 0, accept_local: 0, route_localnet: 0 }],
        ['default', { forwarding: 0, rp_filter: 1, proxy_arp: 0, arp_ignore: 0, arp_announce: 0, accept_local: 0, route_localnet: 0 }],
        [name, { forwarding: over.forward ?? 0, rp_filter: over.devRp ?? 1, proxy_arp: 1, arp_ignore: 2, arp_announce: 0, accept_local: 0, route_localnet: 0 }],
      ]),
    },
    ipv6: { conf: Object.fromEntries([['all', { forwarding: 0, disable_ipv6: 0 }], ['default', { forwarding: 0, disable_ipv6: 0 }], [name, { forwarding: 0, disable_ipv6: 1 }]]) },
    devices: [
      { ifindex: 1, name: 'lo', mtu: 65536, up: true, kind: '', addresses: ['127.0.0.1/8'], lladdr: '00:00:00:00:00:00' },
      { ifindex: 5, name, mtu: over.mtu ?? 1500, up: true, kind: 'veth', addresses: ['192.0.2.1/24'], lladdr: '02:00:00:00:00:01' },
    ],
    routes: [{ family: 4, table: 'main', dst: '192.0.2.0/24', gateway: null, dev: name, type: 'unicast', src: '192.0.2.1' }],
    rules: [{ family: 4, priority: 0, table: 'local', selector: 'from all' }, { family: 4, priority: 32766, table: 'main', selector: 'from all' }],
  };
}

const record = (timeNs: bigint, s: NetnsSettings, netns = 4026532100): SettingsRecord => ({ timeNs, netns, netnsName: 'st-router', settings: s });

test('the settings record: JSON as the schema says, read back as it was written', () => {
  const r = record(T0 + 123n, settings());
  const line = jsonText(toJsonSettings(r));
  assert.equal(validateJsonLine(line), null);
  assert.deepEqual(Object.keys(JSON.parse(line) as object).slice(0, 6), ['v', 'type', 'time', 'netns', 'netns_name', 'ipv4']);
  const read = classify(line);
  assert.equal(read.kind, 'settings');
  assert.deepEqual(settingsFromJson((read as { record: ReturnType<typeof toJsonSettings> }).record), r);
  // IPv6 off: no ipv6 at all, and still valid.
  const { ipv6: _, ...v4only } = settings();
  const off = jsonText(toJsonSettings(record(T0, v4only)));
  assert.equal(validateJsonLine(off), null);
  assert.equal(settingsFromJson(JSON.parse(off)).settings.ipv6, undefined);
  assert.throws(() => classify(line.replace('"ipv4":{"forwarding":0,', '"ipv4":{')), /not a settings record: ipv4\.forwarding is missing/);
  assert.throws(() => classify(line.replace('"mtu":1500', '"mtu":"1500"')), /not a settings record/);
});

test('hostile device names: carried in JSON as they are, escaped in text, never a key that changes the object', () => {
  const s = settings({ name: '__proto__' });
  const evil = { ...s, devices: [...s.devices, { ifindex: 9, name: 'x\u001b[31m\u202e', mtu: 1500, up: false, kind: 'dummy', addresses: [], lladdr: null }] };
  const line = jsonText(toJsonSettings(record(T0, evil)));
  assert.doesNotMatch(line, /[\u001b\u202e]/);
  const back = settingsFromJson(JSON.parse(line));
  assert.deepEqual(back.settings, evil);
  assert.ok(Object.hasOwn(back.settings.ipv4.conf, '__proto__'));
  const text = settingsNoticeText({ ...record(T0, evil), previous: null }).join('\n');
  assert.doesNotMatch(text, /[\u001b\u202e]/);
  assert.match(text, /device x\\x1b\[31m\\u202e \(ifindex 9\) dummy mtu 1500 down/);
  // Which settings applied finds the device's own values by its name, not the prototype's.
  const applied = settingsAt([record(T0, evil)], { netns: 4026532100, timeNs: T0, ifindex: 5 });
  assert.equal(applied?.ipv4.proxy_arp, 1);
});

test('settingsAt: the last record of the namespace at or before the event, its device, the values the kernel acts on', () => {
  const timeline = [record(T0, settings({ rp: 0, devRp: 1 })), record(T0 + 1000n, settings({ forward: 1, rp: 2, devRp: 1, mtu: 1400 })),
    record(T0 + 500n, settings(), 4026532999)];
  const before = settingsAt(timeline, { netns: 4026532100, timeNs: T0 - 5n, ifindex: 5 });
  assert.equal(before?.record.timeNs, T0, 'before the first record: the first (read as the trace began)');
  const first = settingsAt(timeline, { netns: 4026532100, timeNs: T0 + 999n, ifindex: 5 })!;
  assert.equal(first.record.timeNs, T0);
  assert.equal(first.ipForward, 0);
  assert.equal(first.device?.mtu, 1500);
  assert.deepEqual(first.ipv4, { forwarding: 0, rp_filter: 1, proxy_arp: 1, arp_ignore: 2, arp_announce: 0, accept_local: 0, route_localnet: 0 });
  assert.deepEqual(first.ipv6, { forwarding: 0, disable_ipv6: 1 });
  const second = new SettingsTimeline(timeline).at({ netns: 4026532100, timeNs: T0 + 1000n, ifname: 'veth-r0' })!;
  assert.equal(second.record.timeNs, T0 + 1000n, 'a record applies from its own time');
  assert.equal(second.ipForward, 1);
  assert.equal(second.ipv4.rp_filter, 2, 'rp_filter: the larger of all and the device');
  assert.equal(second.device?.mtu, 1400);
  const nodev = settingsAt(timeline, { netns: 4026532100, timeNs: T0, ifindex: 77 })!;
  assert.equal(nodev.device, null);
  assert.equal(nodev.ipv4.rp_filter, 0, 'without a device: all\'s');
  assert.equal(settingsAt(timeline, { netns: 1, timeNs: T0 }), null);
});

test('text: a block per namespace, a line per change naming what changed', () => {
  const block = settingsBlock(record(T0, settings()));
  assert.equal(block[0], 'settings netns st-router (inode 4026532100): net.ipv4.ip_forward=0');
  assert.ok(block.includes('  ipv4 conf veth-r0: forwarding=0 rp_filter=1 proxy_arp=1 arp_ignore=2 arp_announce=0 accept_local=0 route_localnet=0'));
  assert.ok(block.includes('  device veth-r0 (ifindex 5) veth mtu 1500 up 02:00:00:00:00:01 192.0.2.1/24'));
  assert.ok(block.includes('  route ipv4 table main 192.0.2.0/24 dev veth-r0 src 192.0.2.1'));
  assert.ok(block.includes('  rule ipv4 32766: from all lookup main'));
  const next = settings({ forward: 1, mtu: 1400 });
  next.routes = [...next.routes, { family: 4, table: 'main', dst: '198.51.100.0/24', gateway: '192.0.2.2', dev: 'veth-r0', type: 'unicast', src: null }];
  assert.deepEqual(settingsChanges(settings(), next), [
    'net.ipv4.ip_forward 0→1', 'ipv4 conf all forwarding 0→1', 'ipv4 conf veth-r0 forwarding 0→1', 'device veth-r0 mtu 1500→1400',
    'route added: ipv4 table main 198.51.100.0/24 via 192.0.2.2 dev veth-r0',
  ]);
  const line = settingsNoticeText({ ...record(T0, next), previous: settings() });
  assert.equal(line.length, 1);
  assert.match(line[0]!, /^settings netns st-router \(inode 4026532100\) changed: net\.ipv4\.ip_forward 0→1; /);
});
