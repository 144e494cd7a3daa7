/**
 * The libc calls pktpath makes (libc.so.6), bound with koffi: raw syscalls
 * (bpf, perf_event_open), sockets, namespaces, mmap, and the C heap's tuning.
 * Int-returning calls return -1 and set errno (errno() reads it); the sys*
 * wrappers return a negative errno instead.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import koffi from 'koffi';
import { isNull } from './memory.js';

const libc = koffi.load('libc.so.6');
const closeFn = libc.func('int close(int fd)');

/** x86_64 syscall numbers. */
const SYS_bpf = 321;
const SYS_perf_event_open = 298;

export const c = {
  /** bpf(2). Declared with fixed arguments: on x86_64 that matches the variadic ABI for integers. */
  bpf: libc.func('long syscall(long nr, int cmd, void *attr, uint32_t size)') as (nr: number, cmd: number, attr: Buffer, size: number) => number,
  perf_event_open: libc.func('long syscall(long nr, void *attr, int pid, int cpu, int group_fd, unsigned long flags)') as
    (nr: number, attr: Buffer, pid: number, cpu: number, groupFd: number, flags: number) => number,
  /** Formats a va_list into a buffer it allocates: the verifier log is one message of any size. */
  vasprintf: libc.func('int vasprintf(_Out_ void **out, void *fmt, void *args)'),
  free: libc.func('void free(void *ptr)'),
  close: libc.func('int close(int fd)') as (fd: number) => number,
  /** close(2) on a thread of libuv's pool: closing a kprobe's perf event waits for an RCU grace period. */
  closeAsync: (fd: number): Promise<number> => new Promise((resolve) => closeFn.async(fd, (_err: unknown, rc: number) => resolve(rc))),
  open: libc.func('int open(const char *path, int flags)') as (path: string, flags: number) => number,
  write: libc.func('long write(int fd, const void *buf, size_t len)') as (fd: number, buf: Buffer, len: number) => number,
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)') as (initval: number, flags: number) => number,
  epoll_create1: libc.func('int epoll_create1(int flags)') as (flags: number) => number,
  /** `event`: struct epoll_event, packed on x86_64 (12 bytes). */
  epoll_ctl: libc.func('int epoll_ctl(int epfd, int op, int fd, const void *event)') as (epfd: number, op: number, fd: number, event: Buffer | null) => number,
  /** Called with .async: it blocks a thread of libuv's pool, not the event loop. */
  epoll_wait: libc.func('int epoll_wait(int epfd, _Out_ void *events, int maxevents, int timeout)'),
  setns: libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)'),
  munmap: libc.func('int munmap(void *addr, size_t length)'),
  gettid: libc.func('int gettid(void)') as () => number,
  clock_gettime: libc.func('int clock_gettime(int clk, _Out_ void *ts)') as (clk: number, ts: Buffer) => number,
  ioctl: libc.func('int ioctl(int fd, unsigned long request, int arg)') as (fd: number, request: number, arg: number) => number,
  socket: libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number,
  send: libc.func('long send(int fd, const void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  recv: libc.func('long recv(int fd, _Out_ void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)') as
    (fd: number, level: number, name: number, value: Buffer, len: number) => number,
  /** `len`: a 4-byte buffer holding the room in `value`, overwritten with what the kernel wrote. */
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ void *len)') as
    (fd: number, level: number, name: number, value: Buffer, len: Buffer) => number,
};

const mallocTrim = libc.func('int malloc_trim(size_t pad)');
const mallopt = libc.func('int mallopt(int param, int value)');
const M_MMAP_THRESHOLD = -3;
// libbpf reads and parses the kernel's BTF (megabytes) for every object it
// loads. glibc would raise its mmap threshold after the first such block is
// freed and put the next ones on the brk heap, where freed space cannot be
// returned past what is still in use above it. A fixed threshold keeps large
// blocks in mmaps of their own, returned whole when freed.
mallopt(M_MMAP_THRESHOLD, 256 * 1024);

/**
 * Gives the C heap's free pages back to the system (glibc's malloc_trim):
 * libbpf parses the kernel's BTF for every object it loads and frees it, but
 * the freed pages stay with the process until asked for.
 */
export function releaseFreeNativeMemory(): void {
  mallocTrim(0);
}

export function sysBpf(cmd: number, attr: Buffer): number {
  const rc = c.bpf(SYS_bpf, cmd, attr, attr.length);
  return rc < 0 ? -koffi.errno() : rc;
}

/** perf_event_open(2) with an attr Buffer; a negative errno on failure. */
export function sysPerfEventOpen(attr: Buffer, pid: number, cpu: number, flags: number): number {
  const rc = c.perf_event_open(SYS_perf_event_open, attr, pid, cpu, -1, flags);
  return rc < 0 ? -koffi.errno() : rc;
}

export function errno(): number {
  return koffi.errno();
}

const if_nameindex = libc.func('void *if_nameindex(void)');
const if_freenameindex = libc.func('void if_freenameindex(void *ptr)');
const IfNameIndex = koffi.struct('pktpath_if_nameindex', { if_index: 'uint32_t', if_name: 'char *' });

/** Devices of the calling thread's network namespace: if_nameindex(3). */
export function interfaces(): Array<{ ifindex: number; name: string }> {
  const p = if_nameindex();
  if (isNull(p)) return [];
  try {
    const out: Array<{ ifindex: number; name: string }> = [];
    const size = koffi.sizeof(IfNameIndex);
    for (let i = 0; ; i++) {
      const entry = koffi.decode(p, i * size, IfNameIndex) as { if_index: number; if_name: string | null };
      if (entry.if_index === 0) break;
      out.push({ ifindex: entry.if_index, name: entry.if_name ?? '' });
    }
    return out;
  } finally {
    if_freenameindex(p);
  }
}

const PROT_READ = 1;
const MAP_PRIVATE = 2;
const MAP_FAILED = 0xffffffffffffffffn;

/**
 * A file's bytes mapped read-only for the rest of the process (never
 * unmapped: only for files that do not change, such as the kernel's BTF), or
 * null where the file cannot be mapped.
 */
export function mapFile(path: string): Uint8Array | null {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return null;
    const p = c.mmap(null, size, PROT_READ, MAP_PRIVATE, fd, 0) as bigint | null;
    if (isNull(p) || p === MAP_FAILED) return null;
    return new Uint8Array(koffi.view(p, size));
  } finally {
    closeSync(fd);
  }
}
