/**
 * tc observers on kernels without tcx links (before 6.6): a direct-action
 * cls_bpf filter on the device's clsact qdisc, late in its order
 * (priority 0xc000: after what CNIs install), returning TC_ACT_UNSPEC so the
 * next filter decides. Unlike a link, a filter outlives its process: it is
 * named after pktpath's pid (`pktpath_PID`), removed on every exit, and a
 * stale one (its pid gone) is removed by a watchdog process the session
 * starts (it waits for the session's end, even by SIGKILL), by the next
 * session and by `pktpath cleanup`. A clsact qdisc is removed only when pktpath added it and no
 * filter is left on it; never anyone else's.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Link, LoadedProgram } from '../bpf/link.js';
import { NETLINK_ROUTE, NetlinkSocket } from '../kernel/netlink.js';
import { type Netns, withNetns } from '../kernel/netns.js';
import {
  PKTPATH_FILTER_PREFIX, addBpfFilter, addClsact, deleteBpfFilter, deleteClsact, listDevices, pktpathFilterName, tcBpfFilters,
} from '../kernel/rtnl.js';
import type { TcAttacher } from './tc.js';
import type { Direction } from './verdicts.js';
import { processAlive } from '../kernel/process.js';

const PRIORITY = 0xc000;
/** Other sessions' filters take the next priorities. */
const PRIORITY_TRIES = 16;
const EEXIST = 17;

/** Devices (netns inode:ifindex) whose clsact qdisc this process added. */
const addedQdiscs = new Set<string>();

class ClsactFilter implements Link {
  private open = true;
  constructor(private readonly netns: Netns, private readonly ifindex: number, private readonly direction: Direction,
    private readonly priority: number, private readonly handle: number, readonly description: string) {}

  close(): void {
    if (!this.open) return;
    this.open = false;
    withNetns(this.netns.path, () => {
      const sock = NetlinkSocket.open(NETLINK_ROUTE);
      try {
        deleteBpfFilter(sock, this.ifindex, this.direction, this.priority, this.handle);
        const k = `${this.netns.inode}:${this.ifindex}`;
        if (addedQdiscs.has(k) && tcBpfFilters(sock, this.ifindex).length === 0) {
          deleteClsact(sock, this.ifindex);
          addedQdiscs.delete(k);
        }
      } catch {
        // The device went away, and its qdisc and filters with it.
      } finally {
        sock.close();
      }
    });
  }
}

/** A filter of `prog` on a device of `netns` (the calling thread is in it), through `sock` of that namespace. */
export function attachClsact(prog: LoadedProgram, netns: Netns, ifindex: number, direction: Direction, description: string,
  sock: NetlinkSocket): Link {
  if (addClsact(sock, ifindex)) addedQdiscs.add(`${netns.inode}:${ifindex}`);
  const name = pktpathFilterName();
  for (let priority = PRIORITY; priority < PRIORITY + PRIORITY_TRIES; priority++) {
    try {
      const handle = addBpfFilter(sock, ifindex, direction, prog.fd, name, priority);
      return new ClsactFilter(netns, ifindex, direction, priority, handle, description);
    } catch (e) {
      if ((e as { errno?: number }).errno !== EEXIST) throw e;
    }
  }
  throw new Error(`attaching ${description}: tc priorities ${PRIORITY}–${PRIORITY + PRIORITY_TRIES - 1} are all taken`);
}


/** Removes the filters of pktpath sessions that are gone, in a namespace; returns where. */
export function removeStaleFilters(netns: Netns): string[] {
  const removed: string[] = [];
  try {
    withNetns(netns.path, () => {
      const sock = NetlinkSocket.open(NETLINK_ROUTE);
      try {
        for (const dev of listDevices(sock)) {
          for (const f of tcBpfFilters(sock, dev.ifindex)) {
            if (!f.name.startsWith(PKTPATH_FILTER_PREFIX)) continue;
            const pid = Number(f.name.slice(PKTPATH_FILTER_PREFIX.length));
            if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) continue;
            deleteBpfFilter(sock, dev.ifindex, f.direction, f.priority, f.handle);
            removed.push(`${f.name} on ${dev.name} ${f.direction} (netns ${netns.name || netns.inode})`);
          }
        }
      } finally {
        sock.close();
      }
    });
  } catch {
    // A namespace that went away.
  }
  return removed;
}

const PKTPATH = fileURLToPath(new URL('../../../bin/pktpath', import.meta.url));

/**
 * Starts `pktpath cleanup --after PID`: it waits on a pipe only this process
 * holds, so it wakes when this process ends however it ends, and removes
 * what filters are left. Detached, so a signal to the session's process
 * group does not take it first.
 */
export function startFilterWatchdog(): void {
  const child = spawn(process.execPath, [PKTPATH, 'cleanup', '--after', String(process.pid)], {
    stdio: ['pipe', 'ignore', 'ignore'], detached: true,
  });
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
}

/** What the watchdog does: wait for stdin to close and `pid` to be gone, then remove stale filters everywhere. */
export async function awaitExitOf(pid: number): Promise<void> {
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve).on('error', () => resolve()).on('close', resolve);
    process.stdin.resume();
  });
  for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
}

/**
 * For a session on a kernel without tcx: starts the watchdog, removes what
 * sessions that are gone left in `namespaces`, and returns how the session's
 * tc observers go on a device.
 */
export function clsactAttacher(namespaces: Netns[], status: (line: string) => void): TcAttacher {
  startFilterWatchdog();
  for (const netns of namespaces) for (const f of removeStaleFilters(netns)) status(`pktpath: removed a stale tc filter: ${f}`);
  return (prog, netns, ifindex, direction, description, rtnl) => attachClsact(prog, netns, ifindex, direction, description, rtnl!);
}
