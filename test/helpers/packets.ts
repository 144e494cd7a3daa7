/** Builds Ethernet frames for filter tests: IPv4/IPv6 with TCP, UDP, ICMP, ICMPv6; ARP; VLAN; fragments; IP options. */
import { parseAddress } from '../../src/decode/addr.js';

const MAC_A = [0x02, 0, 0, 0, 0, 1];
const MAC_B = [0x02, 0, 0, 0, 0, 2];

function addr(text: string): number[] {
  return [...parseAddress(text)!.bytes];
}
const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

export interface L4 {
  proto: 'tcp' | 'udp' | 'icmp' | 'icmp6' | number;
  sport?: number;
  dport?: number;
  flags?: number;
  payload?: number[];
}

function l4Bytes(l4: L4): { proto: number; bytes: number[] } {
  const payload = l4.payload ?? [];
  switch (l4.proto) {
    case 'tcp':
      return { proto: 6, bytes: [...u16(l4.sport ?? 40000), ...u16(l4.dport ?? 80), ...u32(1), ...u32(0), 0x50, l4.flags ?? 0x02, ...u16(65535), 0, 0, 0, 0, ...payload] };
    case 'udp':
      return { proto: 17, bytes: [...u16(l4.sport ?? 40000), ...u16(l4.dport ?? 53), ...u16(8 + payload.length), 0, 0, ...payload] };
    case 'icmp':
      return { proto: 1, bytes: [8, 0, 0, 0, 0, 1, 0, 1, ...payload] };
    case 'icmp6':
      return { proto: 58, bytes: [128, 0, 0, 0, 0, 1, 0, 1, ...payload] };
    default:
      return { proto: l4.proto, bytes: payload };
  }
}

export function ipv4(src: string, dst: string, l4: L4, opts: { frag?: number; mf?: boolean; options?: number[]; ttl?: number } = {}): number[] {
  const { proto, bytes } = l4Bytes(l4);
  const options = opts.options ?? [];
  const ihl = 5 + options.length / 4;
  const fragField = ((opts.mf ? 0x2000 : 0) | (opts.frag ?? 0)) & 0xffff;
  const total = ihl * 4 + bytes.length;
  return [0x40 | ihl, 0, ...u16(total), 0, 1, ...u16(fragField), opts.ttl ?? 64, proto, 0, 0, ...addr(src), ...addr(dst), ...options, ...bytes];
}

export function ipv6(src: string, dst: string, l4: L4, opts: { hopByHop?: boolean } = {}): number[] {
  const { proto, bytes } = l4Bytes(l4);
  const ext = opts.hopByHop ? [proto, 0, 1, 4, 0, 0, 0, 0] : [];
  const next = opts.hopByHop ? 0 : proto;
  return [0x60, 0, 0, 0, ...u16(ext.length + bytes.length), next, 64, ...addr(src), ...addr(dst), ...ext, ...bytes];
}

export function ether(type: number, payload: number[], vlan?: number): Uint8Array {
  const tag = vlan !== undefined ? [0x81, 0x00, ...u16(vlan)] : [];
  return Uint8Array.from([...MAC_B, ...MAC_A, ...tag, ...u16(type), ...payload]);
}

export const eth4 = (p: number[]) => ether(0x0800, p);
export const eth6 = (p: number[]) => ether(0x86dd, p);

export function arp(sender: string, target: string): Uint8Array {
  return ether(0x0806, [0, 1, 8, 0, 6, 4, 0, 1, ...MAC_A, ...addr(sender), 0, 0, 0, 0, 0, 0, ...addr(target)]);
}

/** A varied corpus: what every filter test runs against. */
export function corpus(): Array<{ name: string; frame: Uint8Array }> {
  const big = Array.from({ length: 200 }, (_, i) => i & 0xff);
  return [
    { name: 'tcp syn 192.0.2.1→192.0.2.2:80', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'tcp', dport: 80, flags: 0x02 })) },
    { name: 'tcp syn-ack 192.0.2.2:80→192.0.2.1', frame: eth4(ipv4('192.0.2.2', '192.0.2.1', { proto: 'tcp', sport: 80, dport: 40000, flags: 0x12 })) },
    { name: 'tcp psh-ack with payload, port 8080', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'tcp', dport: 8080, flags: 0x18, payload: big })) },
    { name: 'tcp with IP options', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'tcp', dport: 80 }, { options: [1, 1, 1, 0] })) },
    { name: 'udp dns to 198.51.100.7', frame: eth4(ipv4('192.0.2.1', '198.51.100.7', { proto: 'udp', dport: 53, payload: [0x68, 0x65, 0x6c, 0x6c, 0x6f] })) },
    { name: 'udp 203.0.113.9:5353', frame: eth4(ipv4('203.0.113.9', '192.0.2.2', { proto: 'udp', sport: 5353, dport: 5353 })) },
    { name: 'icmp echo 192.0.2.1→192.0.2.3', frame: eth4(ipv4('192.0.2.1', '192.0.2.3', { proto: 'icmp' })) },
    { name: 'icmp echo big', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'icmp', payload: big })) },
    { name: 'ipv4 first fragment (tcp)', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'tcp', dport: 80 }, { mf: true })) },
    { name: 'ipv4 later fragment (tcp)', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 6, payload: [0, 80, 0, 80, 1, 2, 3, 4] }, { frag: 100 })) },
    { name: 'gre (proto 47)', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 47, payload: [0, 0, 8, 0] })) },
    { name: 'ipv6 icmp6 echo', frame: eth6(ipv6('2001:db8::1', '2001:db8::2', { proto: 'icmp6' })) },
    { name: 'ipv6 tcp port 443', frame: eth6(ipv6('2001:db8::1', '2001:db8:1::5', { proto: 'tcp', dport: 443, flags: 0x02 })) },
    { name: 'ipv6 udp with hop-by-hop', frame: eth6(ipv6('2001:db8::1', '2001:db8::2', { proto: 'udp', dport: 53 }, { hopByHop: true })) },
    { name: 'arp who-has 192.0.2.2', frame: arp('192.0.2.1', '192.0.2.2') },
    { name: 'vlan 100 ipv4 tcp', frame: ether(0x0800, ipv4('192.0.2.1', '192.0.2.2', { proto: 'tcp', dport: 80 }), 100) },
    { name: 'truncated ipv4 (header only)', frame: eth4(ipv4('192.0.2.1', '192.0.2.2', { proto: 'tcp' }).slice(0, 20)) },
  ];
}
