/**
 * The native surface the loader stands on: libbpf (libbpf.so.1) and a few libc
 * calls, bound with koffi. Nothing else in pktpath imports koffi; the other
 * modules of src/bpf wrap these calls in handles that own what they open.
 *
 * Conventions: pointer-returning libbpf calls give a BigInt address or null
 * and set errno; int-returning calls return a negative errno.
 */
import koffi from 'koffi';

export type Ptr = bigint;

const libbpfSo = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

koffi.opaque('bpf_object');
koffi.opaque('bpf_program');
koffi.opaque('bpf_map');
koffi.opaque('bpf_link');

/** `void (*)(level, fmt, va_list)`: va_list is passed through to vsnprintf. */
const PrintFn = koffi.proto('int pktpath_libbpf_print(int level, const char *fmt, void *args)');

export const libbpf = {
  /** Binds a further libbpf function on first use. */
  bind: (decl: string) => libbpfSo.func(decl),
  set_print: libbpfSo.func('void *libbpf_set_print(pktpath_libbpf_print *fn)'),
  num_possible_cpus: libbpfSo.func('int libbpf_num_possible_cpus(void)'),

  object__open_file: libbpfSo.func('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
  object__load: libbpfSo.func('int bpf_object__load(bpf_object *obj)'),
  object__close: libbpfSo.func('void bpf_object__close(bpf_object *obj)'),
  object__find_program_by_name: libbpfSo.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
  object__find_map_by_name: libbpfSo.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
  object__next_program: libbpfSo.func('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)'),

  program__name: libbpfSo.func('const char *bpf_program__name(bpf_program *prog)'),
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
  map__reuse_fd: libbpfSo.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
  map__set_max_entries: libbpfSo.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
  map__set_initial_value: libbpfSo.func('int bpf_map__set_initial_value(bpf_map *map, const void *data, size_t size)'),
  map__initial_value: libbpfSo.func('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *size)'),

  link__fd: libbpfSo.func('int bpf_link__fd(bpf_link *link)'),
  link__destroy: libbpfSo.func('int bpf_link__destroy(bpf_link *link)'),

  map_lookup_elem: libbpfSo.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
  map_get_next_key: libbpfSo.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)'),
};

/** x86_64 syscall numbers. */
const SYS_bpf = 321;

export const c = {
  /** bpf(2). Declared with fixed arguments: on x86_64 that matches the variadic ABI for integers. */
  bpf: libc.func('long syscall(long nr, int cmd, void *attr, uint32_t size)') as (nr: number, cmd: number, attr: Buffer, size: number) => number,
  /** Formats a va_list into a buffer it allocates: the verifier log is one message of any size. */
  vasprintf: libc.func('int vasprintf(_Out_ void **out, const char *fmt, void *args)'),
  free: libc.func('void free(void *ptr)'),
  close: libc.func('int close(int fd)'),
  open: libc.func('int open(const char *path, int flags)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)'),
  munmap: libc.func('int munmap(void *addr, size_t length)'),
  if_nameindex: libc.func('void *if_nameindex(void)'),
  if_freenameindex: libc.func('void if_freenameindex(void *ptr)'),
  gettid: libc.func('int gettid(void)'),
};

export function sysBpf(cmd: number, attr: Buffer): number {
  const rc = c.bpf(SYS_bpf, cmd, attr, attr.length);
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
  return Buffer.from(new Uint8Array(koffi.view(p, len)).slice());
}


export { PrintFn, koffi };
