/**
 * A namespace's settings (../kernel/settings.ts) as pktpath writes them: the
 * `settings` JSON record and its inverse, the text block and the line a
 * change prints (--output-settings), and which settings applied to an event
 * (`settingsAt`): the last record of its namespace at or before its time.
 */
import type { ConfValues, DeviceConfig, NetnsSettings, RouteConfig, RuleConfig } from '../kernel/settings.js';
import { escapeText } from './escape.js';
import { formatTime } from './format.js';
import { JSON_SCHEMA_VERSION } from './json.js';
import { parseJsonTime } from './json-read.js';

export type { ConfValues, DeviceConfig, NetnsSettings, RouteConfig, RuleConfig };

/** A namespace's settings from a moment on: what the session hands its sinks, and what a trace file's record reads back as. */
export interface SettingsRecord {
  /** From when they apply (wall clock, as events' times). */
  timeNs: bigint;
  netns: number;
  netnsName: string;
  settings: NetnsSettings;
}

/** What a sink is given: the record, and the one it replaces (null for a namespace's first). */
export interface SettingsNotice extends SettingsRecord {
  previous: NetnsSettings | null;
}

export interface JsonSettingsRecord extends NetnsSettings {
  v: typeof JSON_SCHEMA_VERSION;
  type: 'settings';
  time: string;
  netns: number;
  netns_name: string;
}

export function toJsonSettings(r: SettingsRecord): JsonSettingsRecord {
  const s = r.settings;
  return {
    v: JSON_SCHEMA_VERSION, type: 'settings', time: formatTime(r.timeNs), netns: r.netns, netns_name: r.netnsName,
    ipv4: s.ipv4, ...(s.ipv6 ? { ipv6: s.ipv6 } : {}), devices: s.devices, routes: s.routes, rules: s.rules,
  };
}

/** The inverse of toJsonSettings, for a record the schema has checked; throws when its time is not one pktpath writes. */
export function settingsFromJson(r: JsonSettingsRecord): SettingsRecord {
  const timeNs = parseJsonTime(r.time);
  if (timeNs === null) throw new Error(`time ${JSON.stringify(r.time)} is not a UTC time`);
  return {
    timeNs, netns: r.netns, netnsName: r.netns_name,
    settings: { ipv4: r.ipv4, ...(r.ipv6 ? { ipv6: r.ipv6 } : {}), devices: r.devices, routes: r.routes, rules: r.rules },
  };
}

/** Whether two readings say the same (the session writes a record only when they do not). */
export function sameSettings(a: NetnsSettings, b: NetnsSettings): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/* ---- which settings applied ---- */

/** The settings that applied to a packet at a device: the record, the device, and the values the kernel acts on. */
export interface AppliedSettings {
  record: SettingsRecord;
  /** The device, by index (else by name); null when the record has none such. */
  device: DeviceConfig | null;
  /** net.ipv4.ip_forward */
  ipForward: number;
  /**
   * The IPv4 values the kernel uses for the device, combined with `all` as it
   * combines them: forwarding the device's own; rp_filter, arp_ignore,
   * arp_announce the larger; proxy_arp, accept_local, route_localnet either.
   * Without a device: `all`'s.
   */
  ipv4: ConfValues;
  /** IPv6: forwarding as `all` says (what ip6_forward checks), disable_ipv6 the device's; null where IPv6 is off. */
  ipv6: ConfValues | null;
}

const MAX_KEYS = new Set(['rp_filter', 'arp_ignore', 'arp_announce']);
const OR_KEYS = new Set(['proxy_arp', 'accept_local', 'route_localnet']);

function combinedIpv4(all: ConfValues, dev: ConfValues | undefined): ConfValues {
  if (dev === undefined) return { ...all };
  const out: ConfValues = {};
  for (const key of new Set([...Object.keys(all), ...Object.keys(dev)])) {
    const a = all[key];
    const d = dev[key];
    if (a === undefined || d === undefined) out[key] = (d ?? a)!;
    else if (MAX_KEYS.has(key)) out[key] = Math.max(a, d);
    else if (OR_KEYS.has(key)) out[key] = a !== 0 || d !== 0 ? 1 : 0;
    else out[key] = d;
  }
  return out;
}

function own(conf: Record<string, ConfValues> | undefined, name: string): ConfValues | undefined {
  return conf !== undefined && Object.hasOwn(conf, name) ? conf[name] : undefined;
}

export interface SettingsQuery {
  netns: number;
  timeNs: bigint;
  ifindex?: number;
  ifname?: string;
}

/** Settings records by namespace, in time order, to ask which applied when. */
export class SettingsTimeline {
  private readonly byNetns = new Map<number, SettingsRecord[]>();

  constructor(records: Iterable<SettingsRecord> = []) {
    for (const r of records) this.add(r);
  }

  /** Records come in time order per namespace (as a trace has them); one out of order is put in its place. */
  add(r: SettingsRecord): void {
    let list = this.byNetns.get(r.netns);
    if (list === undefined) this.byNetns.set(r.netns, (list = []));
    let i = list.length;
    while (i > 0 && list[i - 1]!.timeNs > r.timeNs) i--;
    list.splice(i, 0, r);
  }

  /**
   * The last record of the namespace at or before the time; before the first,
   * the first (read as the trace began: nothing earlier is known). Null
   * for a namespace without records.
   */
  recordAt(netns: number, timeNs: bigint): SettingsRecord | null {
    const list = this.byNetns.get(netns);
    if (list === undefined || list.length === 0) return null;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.timeNs <= timeNs) lo = mid + 1;
      else hi = mid;
    }
    return list[Math.max(0, lo - 1)]!;
  }

  at(q: SettingsQuery): AppliedSettings | null {
    const record = this.recordAt(q.netns, q.timeNs);
    if (record === null) return null;
    const s = record.settings;
    const device = s.devices.find((d) => q.ifindex !== undefined && q.ifindex > 0 && d.ifindex === q.ifindex) ??
      s.devices.find((d) => q.ifname !== undefined && q.ifname !== '' && d.name === q.ifname) ?? null;
    const name = device?.name ?? '';
    const v6all = own(s.ipv6?.conf, 'all') ?? {};
    const v6dev = name ? own(s.ipv6?.conf, name) : undefined;
    return {
      record,
      device,
      ipForward: s.ipv4.forwarding,
      ipv4: combinedIpv4(own(s.ipv4.conf, 'all') ?? {}, name ? own(s.ipv4.conf, name) : undefined),
      ipv6: s.ipv6 ? {
        ...(v6all.forwarding !== undefined ? { forwarding: v6all.forwarding } : {}),
        ...((v6dev ?? v6all).disable_ipv6 !== undefined ? { disable_ipv6: (v6dev ?? v6all).disable_ipv6! } : {}),
      } : null,
    };
  }
}

/** Which settings applied to an event (its namespace, time and device) among `records`. */
export function settingsAt(records: Iterable<SettingsRecord>, q: SettingsQuery): AppliedSettings | null {
  return new SettingsTimeline(records).at(q);
}

/* ---- text ---- */

const netnsText = (r: { netns: number; netnsName: string }) => (r.netnsName ? `${r.netnsName} (inode ${r.netns})` : `inode ${r.netns}`);
const confText = (v: ConfValues) => Object.entries(v).map(([k, x]) => `${k}=${x}`).join(' ');

export function deviceText(d: DeviceConfig): string {
  return `${d.name} (ifindex ${d.ifindex})${d.kind ? ` ${d.kind}` : ''} mtu ${d.mtu} ${d.up ? 'up' : 'down'}` +
    `${d.lladdr ? ` ${d.lladdr}` : ''}${d.addresses.length ? ` ${d.addresses.join(' ')}` : ''}`;
}

export function routeText(r: RouteConfig): string {
  return `ipv${r.family} table ${r.table} ${r.type !== 'unicast' ? `${r.type} ` : ''}${r.dst}` +
    `${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}${r.src ? ` src ${r.src}` : ''}`;
}

export function ruleText(r: RuleConfig): string {
  const action = /^(blackhole|unreachable|prohibit|nop|goto |action )/.test(r.table) ? r.table : `lookup ${r.table}`;
  return `ipv${r.family} ${r.priority}: ${r.selector} ${action}`;
}

function confLines(family: string, conf: Record<string, ConfValues>): string[] {
  return Object.entries(conf).map(([name, v]) => `  ${family} conf ${name}: ${confText(v)}`);
}

/** A namespace's settings after their first line (`net.ipv4.ip_forward=…`), indented by two, raw (escaped where printed). */
export function settingsLines(s: NetnsSettings): string[] {
  return [
    ...confLines('ipv4', s.ipv4.conf),
    ...(s.ipv6 ? confLines('ipv6', s.ipv6.conf) : ['  ipv6: off']),
    ...s.devices.map((d) => `  device ${deviceText(d)}`),
    ...s.routes.map((x) => `  route ${routeText(x)}`),
    ...s.rules.map((x) => `  rule ${ruleText(x)}`),
  ];
}

/** A namespace's settings as a block of lines (raw: escaped where printed), as --output-settings prints them at the start. */
export function settingsBlock(r: Pick<SettingsRecord, 'netns' | 'netnsName' | 'settings'>): string[] {
  return [`settings netns ${netnsText(r)}: net.ipv4.ip_forward=${r.settings.ipv4.forwarding}`, ...settingsLines(r.settings)];
}

function confChanges(family: string, was: Record<string, ConfValues>, is: Record<string, ConfValues>): string[] {
  const out: string[] = [];
  for (const name of new Set([...Object.keys(was), ...Object.keys(is)])) {
    const a = own(was, name);
    const b = own(is, name);
    if (a === undefined || b === undefined) continue; // A device come or gone says so itself.
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (a[key] !== b[key]) out.push(`${family} conf ${name} ${key} ${a[key] ?? '-'}→${b[key] ?? '-'}`);
    }
  }
  return out;
}

function listChanges<T>(what: string, was: readonly T[], is: readonly T[], text: (x: T) => string): string[] {
  const before = new Set(was.map(text));
  const after = new Set(is.map(text));
  return [
    ...[...before].filter((t) => !after.has(t)).map((t) => `${what} removed: ${t}`),
    ...[...after].filter((t) => !before.has(t)).map((t) => `${what} added: ${t}`),
  ];
}

/** Devices by index: one come or gone whole, else each field that changed (`veth0 mtu 1500→1400`). */
function deviceChanges(was: readonly DeviceConfig[], is: readonly DeviceConfig[]): string[] {
  const before = new Map(was.map((d) => [d.ifindex, d]));
  const after = new Map(is.map((d) => [d.ifindex, d]));
  const out = [...before.values()].filter((d) => !after.has(d.ifindex)).map((d) => `device removed: ${deviceText(d)}`);
  for (const d of after.values()) {
    const b = before.get(d.ifindex);
    if (b === undefined) {
      out.push(`device added: ${deviceText(d)}`);
      continue;
    }
    const fields: string[] = [];
    if (b.name !== d.name) fields.push(`name ${b.name}→${d.name}`);
    if (b.mtu !== d.mtu) fields.push(`mtu ${b.mtu}→${d.mtu}`);
    if (b.up !== d.up) fields.push(d.up ? 'up' : 'down');
    if (b.lladdr !== d.lladdr) fields.push(`lladdr ${b.lladdr ?? '-'}→${d.lladdr ?? '-'}`);
    if (b.kind !== d.kind) fields.push(`kind ${b.kind}→${d.kind}`);
    if (b.addresses.join(' ') !== d.addresses.join(' ')) fields.push(`addresses ${b.addresses.join(',') || '-'}→${d.addresses.join(',') || '-'}`);
    if (fields.length) out.push(`device ${d.name} ${fields.join(' ')}`);
  }
  return out;
}

/** What changed between two readings of a namespace, one phrase each (raw: escaped where printed). */
export function settingsChanges(was: NetnsSettings, is: NetnsSettings): string[] {
  const out: string[] = [];
  if (was.ipv4.forwarding !== is.ipv4.forwarding) out.push(`net.ipv4.ip_forward ${was.ipv4.forwarding}→${is.ipv4.forwarding}`);
  out.push(...confChanges('ipv4', was.ipv4.conf, is.ipv4.conf));
  if ((was.ipv6 === undefined) !== (is.ipv6 === undefined)) out.push(`ipv6 ${is.ipv6 ? 'on' : 'off'}`);
  else if (was.ipv6 && is.ipv6) out.push(...confChanges('ipv6', was.ipv6.conf, is.ipv6.conf));
  out.push(...deviceChanges(was.devices, is.devices));
  out.push(...listChanges('route', was.routes, is.routes, routeText));
  out.push(...listChanges('rule', was.rules, is.rules, ruleText));
  return out;
}

/** What --output-settings prints, escaped: the block for a namespace's first record, one line for a change. */
export function settingsNoticeText(n: SettingsNotice): string[] {
  if (n.previous === null) return settingsBlock(n).map(escapeText);
  const changes = settingsChanges(n.previous, n.settings);
  return [escapeText(`settings netns ${netnsText(n)} changed: ${changes.length ? changes.join('; ') : 'reread'}`)];
}
