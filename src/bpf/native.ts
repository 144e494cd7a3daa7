/**
 * The native surface pktpath stands on — libbpf (libbpf.so.1), libpcap
 * (libpcap.so.0.8) and libnftables (libnftables.so.1), both bound on first
 * use, and a few libc calls — bound with
 * koffi. This is the only module that imports koffi: every other one gets
 * plain JS values, numbers and Buffers from here.
 *
 * Conventions: pointer-returning libbpf calls give a BigInt address or null
 * and set errno; int-returning calls return a negative errno.
 */
import koffi from 'koffi';

export type Ptr = bigint;

/** What an asynchronous call that could not be made returns. */
const EIO = 5;

const libbpfSo = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');
const closeFn = libc.func('int close(int fd)');

koffi.opaque('bpf_object');
koffi.opaque('bpf_program');
koffi.opaque('bpf_map');
koffi.opaque('bpf_link');

const objectLoadFn = libbpfSo.func('int bpf_object__load(bpf_object *obj)');

/**
 * `void (*)(level, fmt, va_list)`: va_list is passed through to vasprintf. The
 * format stays a pointer: most messages are dropped unread (see setLibbpfPrint).
 */
const PrintFn = koffi.proto('int pktpath_libbpf_print(int level, void *fmt, void *args)');

const TestRunOpts = koffi.struct('pktpath_bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'const void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'const void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

/** libbpf 1.1's struct bpf_prog_load_opts (its `sz` tells libbpf which fields it has). */
const ProgLoadOpts = koffi.struct('pktpath_bpf_prog_load_opts', {
  sz: 'size_t',
  attempts: 'int',
  expected_attach_type: 'int',
  prog_btf_fd: 'uint32_t',
  prog_flags: 'uint32_t',
  prog_ifindex: 'uint32_t',
  kern_version: 'uint32_t',
  attach_btf_id: 'uint32_t',
  attach_prog_fd: 'uint32_t',
  attach_btf_obj_fd: 'uint32_t',
  fd_array: 'const int *',
  func_info: 'const void *',
  func_info_cnt: 'uint32_t',
  func_info_rec_size: 'uint32_t',
  line_info: 'const void *',
  line_info_cnt: 'uint32_t',
  line_info_rec_size: 'uint32_t',
  log_level: 'uint32_t',
  log_size: 'uint32_t',
  log_buf: 'char *',
});

/** libbpf 1.1's struct bpf_map_create_opts, up to map_flags (its `sz` says so). */
const MapCreateOpts = koffi.struct('pktpath_bpf_map_create_opts', {
  sz: 'size_t',
  btf_fd: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  inner_map_fd: 'uint32_t',
  map_flags: 'uint32_t',
});
const MAP_CREATE_OPTS_SIZE = koffi.sizeof(MapCreateOpts);

/** libbpf 1.1's struct bpf_object_open_opts, up to btf_custom_path (its `sz` says so). */
const ObjectOpenOpts = koffi.struct('pktpath_bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  attach_prog_fd_stub: 'uint32_t',
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
});
export const OBJECT_OPEN_OPTS_SIZE = koffi.sizeof(ObjectOpenOpts);

const mapCreateFn = libbpfSo.func('int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const pktpath_bpf_map_create_opts *opts)');

export const libbpf = {
  set_print: libbpfSo.func('void *libbpf_set_print(pktpath_libbpf_print *fn)'),
  num_possible_cpus: libbpfSo.func('int libbpf_num_possible_cpus(void)'),

  object__open_file: libbpfSo.func('bpf_object *bpf_object__open_file(const char *path, const pktpath_bpf_object_open_opts *opts)'),
  object__load: objectLoadFn,
  /**
   * bpf_object__load on a thread of libuv's pool: the kernel verifies a
   * program in the thread that loads it, so objects loaded at once verify on
   * as many cores. Messages it prints while JavaScript is busy wait for it.
   */
  object__loadAsync: (obj: Ptr): Promise<number> =>
    new Promise((resolve) => objectLoadFn.async(obj, (err: unknown, rc: number) => resolve(err ? -EIO : rc))),
  object__close: libbpfSo.func('void bpf_object__close(bpf_object *obj)'),
  object__find_program_by_name: libbpfSo.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
  object__find_map_by_name: libbpfSo.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),

  program__fd: libbpfSo.func('int bpf_program__fd(bpf_program *prog)'),
  program__set_autoload: libbpfSo.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
  program__set_type: libbpfSo.func('int bpf_program__set_type(bpf_program *prog, int type)'),
  program__set_expected_attach_type: libbpfSo.func('int bpf_program__set_expected_attach_type(bpf_program *prog, int type)'),
  program__set_attach_target: libbpfSo.func('int bpf_program__set_attach_target(bpf_program *prog, int attach_prog_fd, const char *attach_func_name)'),
  program__attach: libbpfSo.func('bpf_link *bpf_program__attach(bpf_program *prog)'),
  program__insns: libbpfSo.func('const void *bpf_program__insns(bpf_program *prog)'),
  program__insn_cnt: libbpfSo.func('size_t bpf_program__insn_cnt(bpf_program *prog)'),
  program__set_insns: libbpfSo.func('int bpf_program__set_insns(bpf_program *prog, const void *insns, size_t cnt)'),

  map__fd: libbpfSo.func('int bpf_map__fd(bpf_map *map)'),
  map__name: libbpfSo.func('const char *bpf_map__name(bpf_map *map)') as (map: Ptr) => string,
  map__type: libbpfSo.func('int bpf_map__type(bpf_map *map)') as (map: Ptr) => number,
  map__key_size: libbpfSo.func('uint32_t bpf_map__key_size(bpf_map *map)') as (map: Ptr) => number,
  map__value_size: libbpfSo.func('uint32_t bpf_map__value_size(bpf_map *map)') as (map: Ptr) => number,
  map__max_entries: libbpfSo.func('uint32_t bpf_map__max_entries(bpf_map *map)') as (map: Ptr) => number,
  map__map_flags: libbpfSo.func('uint32_t bpf_map__map_flags(bpf_map *map)') as (map: Ptr) => number,
  map_create: (type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags: number): number =>
    mapCreateFn(type, name, keySize, valueSize, maxEntries, {
      sz: MAP_CREATE_OPTS_SIZE, btf_fd: 0, btf_key_type_id: 0, btf_value_type_id: 0, btf_vmlinux_value_type_id: 0, inner_map_fd: 0, map_flags: flags,
    }) as number,
  map__reuse_fd: libbpfSo.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
  map__set_max_entries: libbpfSo.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
  map__set_initial_value: libbpfSo.func('int bpf_map__set_initial_value(bpf_map *map, const void *data, size_t size)'),

  link__destroy: libbpfSo.func('int bpf_link__destroy(bpf_link *link)'),

  map_lookup_elem: libbpfSo.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
  map_get_next_key: libbpfSo.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)'),
  raw_tracepoint_open: libbpfSo.func('int bpf_raw_tracepoint_open(const char *name, int prog_fd)') as
    (name: string | null, progFd: number) => number,
  prog_test_run_opts: libbpfSo.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ pktpath_bpf_test_run_opts *opts)'),
  prog_load: libbpfSo.func('int bpf_prog_load(int type, const char *name, const char *license, const void *insns, size_t cnt, const pktpath_bpf_prog_load_opts *opts)'),
};

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
  setns: libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)'),
  munmap: libc.func('int munmap(void *addr, size_t length)'),
  gettid: libc.func('int gettid(void)') as () => number,
  ioctl: libc.func('int ioctl(int fd, unsigned long request, int arg)') as (fd: number, request: number, arg: number) => number,
  socket: libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number,
  send: libc.func('long send(int fd, const void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  recv: libc.func('long recv(int fd, _Out_ void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)') as
    (fd: number, level: number, name: number, value: Buffer, len: number) => number,
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

const if_nameindex = libc.func('void *if_nameindex(void)');
const if_freenameindex = libc.func('void if_freenameindex(void *ptr)');
const IfNameIndex = koffi.struct('pktpath_if_nameindex', { if_index: 'uint32_t', if_name: 'char *' });

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

export function isNull(p: unknown): boolean {
  return p === null || p === 0n || p === undefined;
}

/** An ArrayBuffer over native memory (e.g. an mmap'ed ring). */
export function viewOf(p: Ptr, len: number): ArrayBuffer {
  return koffi.view(p, len);
}

/** Reads a NUL-terminated C string. */
export function cString(p: Ptr): string {
  return koffi.decode(p, 'char', -1) as string;
}

/** Copies `len` bytes of native memory into a Buffer. */
export function copyBytes(p: Ptr, len: number): Buffer {
  // One copy into a fresh buffer (Buffer.from of a typed array copies it through a slower path).
  const out = Buffer.allocUnsafe(len);
  out.set(new Uint8Array(koffi.view(p, len)));
  return out;
}

/**
 * C strings in native memory that stay put (for attributes that carry
 * pointers, such as perf_event_attr.kprobe_func), with their addresses and an
 * array of those addresses. Freed with free().
 */
export function nativeStrings(strings: string[]): { addresses: bigint[]; array: bigint; free: () => void } {
  const blocks = strings.map((s) => {
    const bytes = Buffer.from(`${s}\0`);
    const p = koffi.alloc('uint8_t', bytes.length);
    koffi.encode(p, 'uint8_t', [...bytes], bytes.length);
    return p;
  });
  const addresses = blocks.map((p) => koffi.address(p) as bigint);
  const array = koffi.alloc('uint64_t', Math.max(1, addresses.length));
  koffi.encode(array, 'uint64_t', addresses, addresses.length);
  return {
    addresses,
    array: koffi.address(array) as bigint,
    free: () => {
      for (const p of blocks) koffi.free(p);
      koffi.free(array);
    },
  };
}

/**
 * Native memory of `size` bytes for the duration of `fn`, which gets its
 * address (for syscall attributes that carry pointers) and returns a result;
 * the bytes are copied out afterwards. `init` gives the memory's first bytes.
 */
export function withNativeMemory<T>(size: number, fn: (address: bigint) => T,
  init?: (address: bigint) => Buffer): { result: T; bytes: Buffer } {
  const p = koffi.alloc('uint8_t', Math.max(1, size));
  try {
    const address = koffi.address(p) as bigint;
    const start = new Array<number>(size).fill(0);
    // What the kernel reads before it writes (info requests that carry their own pointers).
    const first = init?.(address);
    if (first) for (let i = 0; i < Math.min(size, first.length); i++) start[i] = first[i]!;
    koffi.encode(p, 'uint8_t', start, size);
    const result = fn(address);
    return { result, bytes: Buffer.from(koffi.decode(p, 'uint8_t', size) as number[]) };
  } finally {
    koffi.free(p);
  }
}

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

/**
 * Routes libbpf's messages up to `maxLevel` to `fn` (text already formatted);
 * returns nothing to undo: it lasts the process. Messages above it return at
 * once, unformatted: libbpf writes ~8000 debug lines loading the default plan.
 */
export function setLibbpfPrint(fn: (level: number, text: string) => void, maxLevel: number): void {
  const cb = koffi.register((level: number, fmt: unknown, args: unknown): number => {
    if (level > maxLevel) return 0;
    const out: unknown[] = [null];
    const n = c.vasprintf(out, fmt, args) as number;
    if (n < 0 || out[0] === null) return 0;
    const text = cString(out[0] as bigint);
    c.free(out[0]);
    fn(level, text);
    return 0;
  }, koffi.pointer(PrintFn));
  printCallback = cb;
  libbpf.set_print(cb);
}

let printCallback: unknown = null;

/** Turns libbpf's messages off (no call into JavaScript for any of them) or back on to setLibbpfPrint's. */
export function libbpfPrintEnabled(on: boolean): void {
  if (printCallback !== null) libbpf.set_print(on ? printCallback : null);
}

/** BPF_PROG_TEST_RUN through libbpf: the program's return value, or a negative errno. */
export function progTestRun(progFd: number, data: Uint8Array): { rc: number; retval: number } {
  const opts: Record<string, unknown> = {
    sz: koffi.sizeof(TestRunOpts), data_in: data, data_out: null, data_size_in: data.length, data_size_out: 0,
    ctx_in: null, ctx_out: null, ctx_size_in: 0, ctx_size_out: 0, retval: 0, repeat: 1, duration: 0, flags: 0,
    cpu: 0, batch_size: 0,
  };
  const rc = libbpf.prog_test_run_opts(progFd, opts) as number;
  return { rc, retval: opts.retval as number };
}

export interface ProgLoadAttrs {
  expectedAttachType: number;
  attachBtfId: number;
  /** Filled with the verifier's log when the load fails. */
  log: Buffer;
}

/** bpf_prog_load(3) of raw instructions, with the verifier's log: a program fd, or a negative errno. */
export function progLoad(type: number, name: string, license: string, insns: Buffer, attrs: ProgLoadAttrs): number {
  attrs.log.fill(0);
  const opts = {
    sz: koffi.sizeof(ProgLoadOpts), attempts: 0, expected_attach_type: attrs.expectedAttachType, prog_btf_fd: 0,
    prog_flags: 0, prog_ifindex: 0, kern_version: 0, attach_btf_id: attrs.attachBtfId, attach_prog_fd: 0,
    attach_btf_obj_fd: 0, fd_array: null, func_info: null, func_info_cnt: 0, func_info_rec_size: 0, line_info: null,
    line_info_cnt: 0, line_info_rec_size: 0, log_level: 1, log_size: attrs.log.length, log_buf: attrs.log,
  };
  return libbpf.prog_load(type, name, license, insns, insns.length / 8, opts) as number;
}

/** libpcap: compile a tcpdump expression; run classic BPF with libpcap's own interpreter. */
export interface Libpcap {
  /** Classic BPF instructions, or libpcap's error message. */
  compile(linkType: number, snaplen: number, expression: string, netmask: number): { insns: CbpfInsnRaw[] } | { error: string };
  /** bpf_filter(3): the verdict of a classic program on a packet. */
  filter(program: CbpfInsnRaw[], packet: Uint8Array, wireLen: number): number;
}

/** struct bpf_insn of classic BPF. */
export interface CbpfInsnRaw {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** A library bound on first use; the error names the Debian package that has it. */
function loadOptional(name: string, file: string, debianPackage: string): ReturnType<typeof koffi.load> {
  try {
    return koffi.load(file);
  } catch (e) {
    throw new Error(`cannot load ${name} (${file}): ${(e as Error).message}; install ${debianPackage}`);
  }
}

let pcapLib: Libpcap | null = null;

/** Binds libpcap on first use: only runs with a filter expression need it. */
export function libpcap(): Libpcap {
  if (pcapLib) return pcapLib;
  const so = loadOptional('libpcap', 'libpcap.so.0.8', 'libpcap0.8');
  koffi.opaque('pcap_t');
  const Insn = koffi.struct('pktpath_bpf_insn', { code: 'uint16_t', jt: 'uint8_t', jf: 'uint8_t', k: 'uint32_t' });
  koffi.struct('pktpath_bpf_program', { bf_len: 'uint32_t', bf_insns: 'void *' });
  const openDead = so.func('pcap_t *pcap_open_dead(int linktype, int snaplen)');
  const compile = so.func('int pcap_compile(pcap_t *p, _Out_ pktpath_bpf_program *fp, const char *str, int optimize, uint32_t netmask)');
  const geterr = so.func('const char *pcap_geterr(pcap_t *p)');
  const freecode = so.func('void pcap_freecode(pktpath_bpf_program *fp)');
  const close = so.func('void pcap_close(pcap_t *p)');
  const bpfFilter = so.func('uint32_t bpf_filter(const pktpath_bpf_insn *pc, const uint8_t *p, uint32_t wirelen, uint32_t buflen)');
  pcapLib = {
    compile(linkType, snaplen, expression, netmask) {
      const handle = openDead(linkType, snaplen);
      if (!handle) throw new Error('pcap_open_dead failed');
      try {
        const program: { bf_len: number; bf_insns: unknown } = { bf_len: 0, bf_insns: null };
        if ((compile(handle, program, expression, 1, netmask) as number) < 0) return { error: geterr(handle) as string };
        try {
          return { insns: koffi.decode(program.bf_insns, Insn, program.bf_len) as CbpfInsnRaw[] };
        } finally {
          freecode(program);
        }
      } finally {
        close(handle);
      }
    },
    filter(program, packet, wireLen) {
      return bpfFilter(program, packet, wireLen, packet.length) as number;
    },
  };
  return pcapLib;
}

/**
 * libnftables (the library behind `nft`): nft commands run in the network
 * namespace of the thread that created the context (its netlink socket is
 * opened then), with output and errors captured as text.
 */
export interface NftContextHandle {
  /** Runs nft commands; the output on success, else the error text. */
  run(commands: string): { ok: true; output: string } | { ok: false; error: string };
  free(): void;
}

/** nft_ctx_output_set_flags(): no counter values, handles (`# handle N`), chain priorities as numbers. */
export const NftOutput = { stateless: 1 << 2, handle: 1 << 3, numericPriority: 1 << 8 } as const;

interface Libnftables {
  newContext(outputFlags: number): NftContextHandle;
}

let nftLib: Libnftables | null = null;

/** Binds libnftables on first use: only --output-nft and the inventory need it. */
export function libnftables(): Libnftables {
  if (nftLib) return nftLib;
  const so = loadOptional('libnftables', 'libnftables.so.1', 'libnftables1');
  koffi.opaque('nft_ctx');
  const ctxNew = so.func('nft_ctx *nft_ctx_new(uint32_t flags)');
  const ctxFree = so.func('void nft_ctx_free(nft_ctx *ctx)');
  const setFlags = so.func('void nft_ctx_output_set_flags(nft_ctx *ctx, uint32_t flags)');
  const bufferOutput = so.func('int nft_ctx_buffer_output(nft_ctx *ctx)');
  const bufferError = so.func('int nft_ctx_buffer_error(nft_ctx *ctx)');
  const output = so.func('const char *nft_ctx_get_output_buffer(nft_ctx *ctx)');
  const error = so.func('const char *nft_ctx_get_error_buffer(nft_ctx *ctx)');
  const runCmd = so.func('int nft_run_cmd_from_buffer(nft_ctx *ctx, const char *buf)');
  nftLib = {
    newContext(outputFlags) {
      let ctx: unknown = ctxNew(0);
      if (!ctx) throw new Error('nft_ctx_new failed');
      setFlags(ctx, outputFlags);
      bufferOutput(ctx);
      bufferError(ctx);
      return {
        run(commands) {
          if (ctx === null) throw new Error('nft context already freed');
          const rc = runCmd(ctx, commands) as number;
          // Reading a buffer resets it: read both every time.
          const out = (output(ctx) as string | null) ?? '';
          const err = (error(ctx) as string | null) ?? '';
          return rc === 0 ? { ok: true, output: out } : { ok: false, error: err.trim() || `nft failed (${rc})` };
        },
        free() {
          if (ctx === null) return;
          ctxFree(ctx);
          ctx = null;
        },
      };
    },
  };
  return nftLib;
}
