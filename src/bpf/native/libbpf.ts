/**
 * libbpf (libbpf.so.1), bound with koffi: the object, program and map calls
 * the loader uses, libbpf's messages, and the few raw calls around them.
 *
 * Conventions: pointer-returning calls give a BigInt address or null and set
 * errno; int-returning calls return a negative errno.
 */
import koffi from 'koffi';
import { c } from './libc.js';
import { loadLibrary } from './library.js';
import { type Ptr, cString } from './memory.js';

/** What an asynchronous call that could not be made returns. */
const EIO = 5;

const libbpfSo = loadLibrary('libbpf', 'libbpf.so.1', { debian: 'libbpf1', fedora: 'libbpf' });

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
  kernel_log_buf: 'char *',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32_t',
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
