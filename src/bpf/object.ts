/** An eBPF object file (through libbpf): open, configure, load, and find its programs and maps. */
import { BpfError, remedyFor } from './errors.js';
import { debugVerifierLogLevel, installLogCapture, logMark, logTailSince } from './log.js';
import { kernelBtfPath } from './btf/vmlinux.js';
import { OBJECT_OPEN_OPTS_SIZE, libbpf } from './native/libbpf.js';
import { Fd } from './fd.js';
import { errno } from './native/libc.js';
import { type Ptr, copyBytes, isNull } from './native/memory.js';

export class BpfProgram {
  constructor(readonly ptr: Ptr, readonly name: string, private readonly objectName: string) {}

  setAutoload(on: boolean): void {
    libbpf.program__set_autoload(this.ptr, on);
  }
  setType(type: number, expectedAttachType?: number): void {
    this.check(libbpf.program__set_type(this.ptr, type), 'setting the program type');
    if (expectedAttachType !== undefined) {
      this.check(libbpf.program__set_expected_attach_type(this.ptr, expectedAttachType), 'setting the attach type');
    }
  }
  /**
   * For BTF-typed programs: the kernel function or tracepoint to attach to,
   * or, with `prog`, the function of that BPF program (fentry/fexit on it).
   */
  setAttachTarget(target: string, prog?: Fd): void {
    this.check(libbpf.program__set_attach_target(this.ptr, prog?.raw ?? 0, target), `setting the attach target ${target}`);
  }
  /** The loaded program's fd, borrowed: the object owns it. */
  get fd(): Fd {
    return Fd.borrow(libbpf.program__fd(this.ptr) as number);
  }
  /** The program's instructions as libbpf will load them (before load: not yet relocated). */
  insns(): Buffer {
    const count = Number(libbpf.program__insn_cnt(this.ptr));
    return copyBytes(libbpf.program__insns(this.ptr) as Ptr, count * 8);
  }
  /** Replaces the instructions before load; same count keeps libbpf's relocation indices valid. */
  setInsns(insns: Buffer): void {
    this.check(libbpf.program__set_insns(this.ptr, insns, insns.length / 8) as number, 'setting the instructions');
  }
  private check(rc: number, what: string): void {
    if (rc < 0) throw new BpfError(`${what} of ${this.objectName}/${this.name}`, rc);
  }
}

export class BpfMap {
  constructor(readonly ptr: Ptr, readonly name: string) {}
  /** Shares a map already created by another object (before load). */
  reuseFd(fd: Fd): void {
    const rc = libbpf.map__reuse_fd(this.ptr, fd.raw) as number;
    if (rc < 0) throw new BpfError(`sharing map ${this.name}`, rc);
  }
  setMaxEntries(n: number): void {
    const rc = libbpf.map__set_max_entries(this.ptr, n) as number;
    if (rc < 0) throw new BpfError(`sizing map ${this.name} to ${n}`, rc);
  }
  /**
   * A new map in the kernel with this one's definition (type, sizes,
   * entries, flags), before load: for maps several objects share, created
   * before any of them loads. The handle owns the fd.
   */
  createLike(): Fd {
    const p = this.ptr;
    const fd = libbpf.map_create(libbpf.map__type(p), libbpf.map__name(p).slice(0, 15), libbpf.map__key_size(p),
      libbpf.map__value_size(p), libbpf.map__max_entries(p), libbpf.map__map_flags(p));
    if (fd < 0) throw new BpfError(`creating map ${this.name}`, fd, [], remedyFor(fd));
    return Fd.own(fd);
  }
  setInitialValue(data: Buffer): void {
    const rc = libbpf.map__set_initial_value(this.ptr, data, data.length) as number;
    if (rc < 0) throw new BpfError(`setting the initial value of ${this.name} (${data.length} bytes)`, rc);
  }
}

export class BpfObject {
  private closed = false;

  private constructor(private readonly ptr: Ptr, readonly path: string, readonly label: string) {}

  /** `label` names this instance in errors (e.g. the observation point). */
  static open(path: string, label = path): BpfObject {
    installLogCapture();
    const mark = logMark();
    const custom = kernelBtfPath();
    // With a log level, libbpf prints each program's verifier log (its own buffer) after a successful load too.
    const logLevel = debugVerifierLogLevel();
    const opts = custom === null && logLevel === 0 ? null : {
      sz: OBJECT_OPEN_OPTS_SIZE, object_name: null, relaxed_maps: false, pin_root_path: null, attach_prog_fd_stub: 0,
      kconfig: null, btf_custom_path: custom, kernel_log_buf: null, kernel_log_size: 0, kernel_log_level: logLevel,
    };
    const ptr = libbpf.object__open_file(path, opts) as Ptr | null;
    if (isNull(ptr)) {
      const e = -errno();
      throw new BpfError(`opening ${path}`, e, logTailSince(mark),
        e === -2 ? 'run `npm run build` to build the probes' : remedyFor(e));
    }
    return new BpfObject(ptr!, path, label);
  }

  program(name: string): BpfProgram {
    const p = libbpf.object__find_program_by_name(this.ptr, name) as Ptr | null;
    if (isNull(p)) throw new BpfError(`finding program ${name} in ${this.path}`, -2);
    return new BpfProgram(p!, name, this.label);
  }

  map(name: string): BpfMap {
    const p = libbpf.object__find_map_by_name(this.ptr, name) as Ptr | null;
    if (isNull(p)) throw new BpfError(`finding map ${name} in ${this.path}`, -2);
    return new BpfMap(p!, name);
  }

  /** The object's `const volatile` globals (its .rodata map). */
  rodata(): BpfMap {
    return this.map('.rodata');
  }

  load(): void {
    const mark = logMark();
    const rc = libbpf.object__load(this.ptr) as number;
    if (rc < 0) {
      throw new BpfError(`loading ${this.label}`, rc, logTailSince(mark), remedyFor(rc));
    }
  }

  /**
   * load() on a thread of libuv's pool, with objects loading alongside. Its
   * error quotes nothing: messages printed then are not this object's alone
   * (load it again synchronously for those).
   */
  async loadAsync(): Promise<void> {
    const rc = await libbpf.object__loadAsync(this.ptr);
    if (rc < 0) throw new BpfError(`loading ${this.label}`, rc, [], remedyFor(rc));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libbpf.object__close(this.ptr);
  }
}
