/**
 * Sleeps until one of a set of fds (a ring buffer's map, netlink sockets) is
 * readable, without waking the event loop meanwhile. Node watches no fd of
 * an unknown kind on its own loop (a ring buffer's map is an anonymous inode:
 * net.Socket refuses it), so the wait is one epoll_wait(2) with no timeout on
 * a thread of libuv's pool (koffi's async call), whose end calls back on the
 * main thread. An eventfd in the set ends a wait early, to close.
 */
import { BpfError } from './errors.js';
import { c, errno } from './native/libc.js';

const EPOLLIN = 0x001;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EEXIST = 17;
const EPOLL_CLOEXEC = 0o2000000;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
/** struct epoll_event on x86_64: u32 events, u64 data, packed. */
const EVENT_SIZE = 12;
const MAX_EVENTS = 8;

/**
 * Pollers not yet closed. Node joins libuv's pool threads as the process
 * exits: a wait still under way then (an exit that skipped close(), a fatal
 * error) would hold the exit until a watched fd became readable.
 */
const open = new Set<FdPoller>();
let closeAtExit = false;

export class FdPoller {
  private readonly epfd: number;
  private readonly wakeFd: number;
  private readonly watched = new Set<number>();
  /** Where epoll_wait writes (unread: any readiness means "look"); kept while a wait may write it. */
  private readonly events = Buffer.alloc(EVENT_SIZE * MAX_EVENTS);
  /** The one epoll_event epoll_ctl reads: the set is made again before each sleep. */
  private readonly ctlEvent = Buffer.alloc(EVENT_SIZE);
  private waiting = false;
  private closed = false;

  constructor() {
    this.epfd = c.epoll_create1(EPOLL_CLOEXEC);
    if (this.epfd < 0) throw new BpfError('creating an epoll instance', -errno());
    this.wakeFd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.wakeFd < 0) {
      const e = errno();
      c.close(this.epfd);
      throw new BpfError('creating an eventfd', -e);
    }
    this.control(EPOLL_CTL_ADD, this.wakeFd);
    open.add(this);
    if (!closeAtExit) {
      closeAtExit = true;
      process.on('exit', () => {
        for (const p of open) p.close();
      });
    }
  }

  /**
   * Makes `fds` the set waited on. Each is added again: a closed fd left the
   * set by itself, and its number may now be another file's (EEXIST: the same one).
   */
  watch(fds: Iterable<number>): void {
    const now = new Set(fds);
    for (const fd of this.watched) if (!now.has(fd)) this.control(EPOLL_CTL_DEL, fd);
    for (const fd of now) this.control(EPOLL_CTL_ADD, fd);
    this.watched.clear();
    for (const fd of now) this.watched.add(fd);
  }

  /** Whether a wait is under way. */
  get sleeping(): boolean {
    return this.waiting;
  }

  /**
   * Calls `ready` once any watched fd is readable (at once where one already
   * is; a signal that interrupts the wait calls it too); not while closed,
   * and once for several calls made during one wait.
   */
  wait(ready: () => void): void {
    if (this.closed || this.waiting) return;
    this.waiting = true;
    c.epoll_wait.async(this.epfd, this.events, MAX_EVENTS, -1, () => {
      this.waiting = false;
      if (this.closed) this.release();
      else ready();
    });
  }

  /** Ends a wait under way (its callback is not called) and closes the fds once it has. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    if (!this.waiting) {
      this.release();
      return;
    }
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    c.write(this.wakeFd, one, 8);
  }

  private release(): void {
    c.close(this.epfd);
    c.close(this.wakeFd);
  }

  private control(op: number, fd: number): void {
    const event = this.ctlEvent;
    event.writeUInt32LE(EPOLLIN, 0);
    event.writeUInt32LE(fd, 4);
    if (c.epoll_ctl(this.epfd, op, fd, event) === 0) return;
    const e = errno();
    // Already there, or (removing) gone with its file.
    if (e === EEXIST || op === EPOLL_CTL_DEL) return;
    throw new BpfError(`watching fd ${fd} with epoll`, -e);
  }
}
