/**
 * The settings of one network namespace that decide where its packets go:
 * forwarding, reverse-path filtering, proxy ARP and the ARP replies it
 * gives, per device and for `all`/`default` (/proc/sys/net, read inside the
 * namespace: a sysctl file is looked up in the namespace of the thread that
 * opens it), with its devices, addresses, routes and rules (rtnetlink,
 * ./rtnl-config.ts). A monitor in rtnetlink's groups says when they changed;
 * the values no message announces are re-read by whoever follows them.
 */
import fs from 'node:fs';
import { NETLINK_ROUTE, NetlinkSocket } from './netlink.js';
import { type Netns, withNetns } from './netns.js';
import { type DeviceConfig, type RouteConfig, type RuleConfig, readNamespaceConfig } from './rtnl-config.js';

export type { DeviceConfig, RouteConfig, RuleConfig };

/** net.ipv4.conf.<dev>.*: what decides forwarding, reverse-path checks and ARP replies. */
export const IPV4_CONF_KEYS = ['forwarding', 'rp_filter', 'proxy_arp', 'arp_ignore', 'arp_announce', 'accept_local', 'route_localnet'] as const;
/** net.ipv6.conf.<dev>.* */
export const IPV6_CONF_KEYS = ['forwarding', 'disable_ipv6'] as const;
/**
 * The keys no rtnetlink message announces a change of (netconf messages
 * carry forwarding, rp_filter and proxy_arp only): re-read at a low rate.
 */
export const UNANNOUNCED_KEYS = {
  ipv4: ['arp_ignore', 'arp_announce', 'accept_local', 'route_localnet'] as readonly string[],
  ipv6: ['disable_ipv6'] as readonly string[],
};

/** One conf directory's values by key; a key this kernel lacks is absent. */
export type ConfValues = Record<string, number>;

export interface NetnsSettings {
  ipv4: {
    /** net.ipv4.ip_forward */
    forwarding: number;
    /** `all`, `default`, then each device by name. */
    conf: Record<string, ConfValues>;
  };
  /** Absent where IPv6 is off (no /proc/sys/net/ipv6). */
  ipv6?: { conf: Record<string, ConfValues> };
  devices: DeviceConfig[];
  routes: RouteConfig[];
  rules: RuleConfig[];
}

const SYSCTL_NET = '/proc/sys/net';
const IFNAMSIZ = 16;
const VALUE_BYTES = 64;
const valueBuf = Buffer.alloc(VALUE_BYTES);

/**
 * Whether a device name may stand in a sysctl path. The kernel refuses such
 * names (dev_valid_name), but a path is never built from a name unchecked.
 * A device named like the `all` or `default` directories is left out too.
 */
export function isPathSafeDeviceName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) < IFNAMSIZ && name !== '.' && name !== '..' && name !== 'all' &&
    name !== 'default' && !/[/:\s\0]/.test(name);
}

/** One sysctl's integer value, read bounded; null where the file is missing or holds no single integer. */
export function readSysctl(path: string): number | null {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const n = fs.readSync(fd, valueBuf, 0, VALUE_BYTES, 0);
    const m = /^(-?\d{1,12})\s*$/.exec(valueBuf.toString('latin1', 0, n));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

function readConf(dir: string, keys: readonly string[]): ConfValues | null {
  const out: ConfValues = {};
  let any = false;
  for (const key of keys) {
    const v = readSysctl(`${dir}/${key}`);
    if (v === null) continue;
    out[key] = v;
    any = true;
  }
  return any ? out : null;
}

/** `all`, `default`, then the devices' conf directories that exist, each with `keys`. */
function readConfs(family: 'ipv4' | 'ipv6', names: readonly string[], keys: readonly string[]): Record<string, ConfValues> {
  const entries: Array<[string, ConfValues]> = [];
  for (const name of ['all', 'default', ...names.filter(isPathSafeDeviceName)]) {
    const values = readConf(`${SYSCTL_NET}/${family}/conf/${name}`, keys);
    if (values !== null) entries.push([name, values]);
  }
  // fromEntries makes own properties: a device named `__proto__` is a key like any other.
  return Object.fromEntries(entries);
}

/** The calling thread's namespace's sysctls for its devices `names`; `keys` narrows each family's (the unannounced ones). */
export function readSysctls(names: readonly string[], keys: { ipv4: readonly string[]; ipv6: readonly string[] } =
  { ipv4: IPV4_CONF_KEYS, ipv6: IPV6_CONF_KEYS }): Pick<NetnsSettings, 'ipv4' | 'ipv6'> {
  const ipv6 = fs.existsSync(`${SYSCTL_NET}/ipv6/conf`);
  return {
    ipv4: { forwarding: readSysctl(`${SYSCTL_NET}/ipv4/ip_forward`) ?? 0, conf: readConfs('ipv4', names, keys.ipv4) },
    ...(ipv6 ? { ipv6: { conf: readConfs('ipv6', names, keys.ipv6) } } : {}),
  };
}

export interface SettingsRead {
  settings: NetnsSettings;
  /** Lists cut at their limits (./rtnl-config.ts). */
  truncated: string[];
}

/** The settings of the calling thread's namespace; `sock`: a route socket of it. */
export function readSettingsHere(sock: NetlinkSocket): SettingsRead {
  const config = readNamespaceConfig(sock);
  const sys = readSysctls(config.devices.map((d) => d.name));
  return {
    settings: { ipv4: sys.ipv4, ...(sys.ipv6 ? { ipv6: sys.ipv6 } : {}), devices: config.devices, routes: config.routes, rules: config.rules },
    truncated: config.truncated,
  };
}

/** The settings of `netns`. Throws where it cannot be entered or read. */
export function readSettings(netns: Netns): SettingsRead {
  return withNetns(netns.path, () => {
    const sock = NetlinkSocket.open(NETLINK_ROUTE);
    try {
      return readSettingsHere(sock);
    } finally {
      sock.close();
    }
  });
}

/**
 * Whether the unannounced values (UNANNOUNCED_KEYS) of the calling thread's
 * namespace differ from those in `settings`.
 */
export function unannouncedChanged(settings: NetnsSettings): boolean {
  const now = readSysctls(settings.devices.map((d) => d.name), UNANNOUNCED_KEYS);
  const differs = (family: 'ipv4' | 'ipv6', keys: readonly string[]) => {
    const was = settings[family]?.conf ?? {};
    const is = now[family]?.conf ?? {};
    if (Object.keys(was).length !== Object.keys(is).length) return true;
    return Object.entries(is).some(([name, values]) => keys.some((k) => values[k] !== was[name]?.[k]));
  };
  return (settings.ipv6 === undefined) !== (now.ipv6 === undefined) ||
    differs('ipv4', UNANNOUNCED_KEYS.ipv4) || differs('ipv6', UNANNOUNCED_KEYS.ipv6);
}

/** Most files UnannouncedFiles holds open for one namespace; past it, they are read by path, inside the namespace. */
export const UNANNOUNCED_FILES_LIMIT = 256;

/**
 * The files of the unannounced values of the calling thread's namespace,
 * held open: each read again in place (a sysctl file's read asks its
 * handler anew), without entering the namespace or looking a path up.
 */
interface HeldValue {
  family: 'ipv4' | 'ipv6';
  dir: string;
  key: string;
  fd: number;
}

export class UnannouncedFiles {
  private constructor(private readonly files: HeldValue[]) {}

  /** Null where the namespace has too many devices to hold their files open. */
  static openHere(names: readonly string[]): UnannouncedFiles | null {
    const dirs = ['all', 'default', ...names.filter(isPathSafeDeviceName)];
    const count = dirs.length * (UNANNOUNCED_KEYS.ipv4.length + UNANNOUNCED_KEYS.ipv6.length);
    if (count > UNANNOUNCED_FILES_LIMIT) return null;
    const files: HeldValue[] = [];
    for (const family of ['ipv4', 'ipv6'] as const) {
      for (const dir of dirs) {
        for (const key of UNANNOUNCED_KEYS[family]) {
          try {
            files.push({ family, dir, key, fd: fs.openSync(`${SYSCTL_NET}/${family}/conf/${dir}/${key}`, 'r') });
          } catch {
            // A key this kernel lacks, or IPv6 off: nothing to follow there.
          }
        }
      }
    }
    return new UnannouncedFiles(files);
  }

  /** Their values now, in order ('?' for a file whose device went away). */
  read(): string[] {
    return this.files.map(({ fd }) => {
      try {
        return valueBuf.toString('latin1', 0, fs.readSync(fd, valueBuf, 0, VALUE_BYTES, 0)).trim();
      } catch {
        return '?';
      }
    });
  }

  /** Whether `values` (of read()) are those `settings` hold. */
  agree(values: readonly string[], settings: NetnsSettings): boolean {
    return this.files.every((f, i) => String(settings[f.family]?.conf[f.dir]?.[f.key] ?? '?') === values[i]);
  }

  close(): void {
    for (const f of this.files) fs.closeSync(f.fd);
    this.files.length = 0;
  }
}

/** rtnetlink's groups whose messages say a namespace's settings changed. */
export const SETTINGS_GROUPS = {
  RTNLGRP_LINK: 1,
  RTNLGRP_IPV4_IFADDR: 5,
  RTNLGRP_IPV4_ROUTE: 7,
  RTNLGRP_IPV4_RULE: 8,
  RTNLGRP_IPV6_IFADDR: 9,
  RTNLGRP_IPV6_ROUTE: 11,
  RTNLGRP_IPV6_RULE: 19,
  RTNLGRP_IPV4_NETCONF: 24,
  RTNLGRP_IPV6_NETCONF: 25,
} as const;

/**
 * A namespace's change monitor: a socket in SETTINGS_GROUPS (opened in the
 * calling thread's namespace) and one for the reads. Reading its messages
 * costs nothing until one arrives.
 */
export class SettingsMonitor {
  private drops = 0;

  private constructor(private readonly events: NetlinkSocket, readonly requests: NetlinkSocket) {}

  /** Opens both in the calling thread's namespace. */
  static openHere(): SettingsMonitor {
    const events = NetlinkSocket.open(NETLINK_ROUTE, Object.values(SETTINGS_GROUPS));
    try {
      return new SettingsMonitor(events, NetlinkSocket.open(NETLINK_ROUTE));
    } catch (e) {
      events.close();
      throw e;
    }
  }

  /** Whether any message arrived (or was lost to a full queue) since last asked; read without waiting. */
  changed(): boolean {
    const read = this.events.poll().length;
    const drops = this.events.drops();
    const lost = drops !== this.drops;
    this.drops = drops;
    return read > 0 || lost;
  }

  close(): void {
    this.events.close();
    this.requests.close();
  }
}
