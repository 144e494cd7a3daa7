/**
 * The settings of the traced namespaces, followed while a session runs: each
 * read as the trace starts and as a namespace appears, and read again when
 * rtnetlink says something changed in it (devices, addresses, routes, rules,
 * and the netconf messages of forwarding, rp_filter and proxy_arp) or when a
 * value no message announces (arp_ignore, arp_announce, accept_local,
 * route_localnet, disable_ipv6) differs at its low-rate check. A record
 * leaves only when the reading differs from the last one. Nothing here runs
 * per packet.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Netns } from '../kernel/netns.js';
import { withNetns } from '../kernel/netns.js';
import { type NetnsSettings, SettingsMonitor, UnannouncedFiles, readSettingsHere, unannouncedChanged } from '../kernel/settings.js';
import { type SettingsNotice, sameSettings } from '../output/settings.js';
import { netnsName } from './families/family.js';
import type { TopologyListener } from './topology.js';

/** How often the monitors are read (a message waits at most this long). */
export const SETTINGS_POLL_MS = 500;
/** How often the values no message announces are read again. */
export const UNANNOUNCED_MS = 2000;

interface Followed {
  netns: Netns;
  monitor: SettingsMonitor;
  settings: NetnsSettings;
  checkedMs: number;
  /** The unannounced values' files held open, and their values as last read; null: read by path inside the namespace. */
  files: UnannouncedFiles | null;
  values: string;
}

/**
 * Inside the namespace: its settings, and the unannounced values' files of
 * its devices opened. Values that changed between the two readings are left
 * for the next check to find.
 */
function readHere(monitor: SettingsMonitor) {
  const read = readSettingsHere(monitor.requests);
  const files = UnannouncedFiles.openHere(read.settings.devices.map((d) => d.name));
  const now = files?.read() ?? [];
  return { ...read, files, values: files?.agree(now, read.settings) ? now.join(',') : '' };
}

export interface SettingsCosts {
  /** Readings made (whole namespaces), and the CPU time they took (user + system, ms). */
  reads: number;
  readCpuMs: number;
  /** Checks of the unannounced values, and their CPU time. */
  checks: number;
  checkCpuMs: number;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export class SettingsFollower {
  private readonly followed = new Map<number, Followed>();
  /** Notices made before the output may carry them (its header first). */
  private held: SettingsNotice[] | null = [];
  private timer: NodeJS.Timeout | null = null;
  readonly costs: SettingsCosts = { reads: 0, readCpuMs: 0, checks: 0, checkCpuMs: 0 };

  constructor(
    /** The wall-clock time now, in events' clock. */
    private readonly now: () => bigint,
    private readonly emit: (n: SettingsNotice) => void,
    private readonly status: (line: string) => void,
  ) {}

  get namespaceCount(): number {
    return this.followed.size;
  }

  /** Reads `netns` and follows it from now on; a namespace that cannot be read is said once and left out. */
  add(netns: Netns): void {
    if (this.followed.has(netns.inode)) return;
    const timeNs = this.now();
    const t0 = cpuMs();
    try {
      const f = withNetns(netns.path, () => {
        const monitor = SettingsMonitor.openHere();
        try {
          // Opened before the read: a change made during it is seen at the next poll.
          const { settings, truncated, files, values } = readHere(monitor);
          if (truncated.length > 0) this.truncated(netns, truncated);
          return { netns, monitor, settings, checkedMs: performance.now(), files, values };
        } catch (e) {
          monitor.close();
          throw e;
        }
      });
      this.followed.set(netns.inode, f);
      this.deliver({ timeNs, netns: netns.inode, netnsName: netns.name, settings: f.settings, previous: null });
    } catch (e) {
      this.status(`pktpath: settings of netns ${netnsName(netns)} not read: ${(e as Error).message}`);
    } finally {
      this.costs.reads++;
      this.costs.readCpuMs += cpuMs() - t0;
    }
  }

  remove(inode: number): void {
    const f = this.followed.get(inode);
    f?.monitor.close();
    f?.files?.close();
    this.followed.delete(inode);
  }

  /** The records held so far go out, and those made from now on at once. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const n of held) this.emit(n);
  }

  /** Reads the monitors every SETTINGS_POLL_MS from now on. */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), SETTINGS_POLL_MS);
  }

  /** Each namespace whose monitor heard something, or whose unannounced values are due and differ, read again. */
  tick(nowMs = performance.now()): void {
    for (const f of this.followed.values()) {
      let changed = false;
      try {
        changed = f.monitor.changed();
        if (!changed && nowMs - f.checkedMs >= UNANNOUNCED_MS) {
          f.checkedMs = nowMs;
          const t0 = cpuMs();
          changed = f.files ? f.files.read().join(',') !== f.values : withNetns(f.netns.path, () => unannouncedChanged(f.settings));
          this.costs.checks++;
          this.costs.checkCpuMs += cpuMs() - t0;
        }
        if (changed) this.reread(f);
      } catch (e) {
        // A namespace that went away says so through the topology; one still there that cannot be read, here.
        if (fs.existsSync(f.netns.path)) this.status(`pktpath: settings of netns ${netnsName(f.netns)} not read any more: ${(e as Error).message}`);
        this.remove(f.netns.inode);
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const inode of [...this.followed.keys()]) this.remove(inode);
  }

  /** What the topology's changes mean here: namespaces to read and follow, or to let go. */
  readonly follow: Partial<TopologyListener> = {
    namespaceAdded: (netns) => this.add(netns),
    namespaceRemoved: (netns) => this.remove(netns.inode),
  };

  private reread(f: Followed): void {
    const timeNs = this.now();
    const t0 = cpuMs();
    const { settings, truncated, files, values } = withNetns(f.netns.path, () => readHere(f.monitor));
    f.files?.close();
    [f.files, f.values] = [files, values];
    this.costs.reads++;
    this.costs.readCpuMs += cpuMs() - t0;
    f.checkedMs = performance.now();
    if (sameSettings(settings, f.settings)) return;
    if (truncated.length > 0) this.truncated(f.netns, truncated);
    const previous = f.settings;
    f.settings = settings;
    this.deliver({ timeNs, netns: f.netns.inode, netnsName: f.netns.name, settings, previous });
  }

  private deliver(n: SettingsNotice): void {
    if (this.held !== null) this.held.push(n);
    else this.emit(n);
  }

  private truncated(netns: Netns, lists: string[]): void {
    this.status(`pktpath: settings of netns ${netnsName(netns)}: only the first of its ${lists.join(', ')} are recorded (too many)`);
  }
}
