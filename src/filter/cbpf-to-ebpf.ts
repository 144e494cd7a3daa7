/**
 * Classic BPF (what libpcap compiles a tcpdump expression to) → eBPF, to run
 * inside pktpath's probes. Every packet load becomes a bounds check against
 * the captured length and then, as the kernel allows (`PacketLoads`):
 * - 'copy': packet bytes are kernel memory the probe cannot load, so from
 *   the scratch's copy of the first bytes, else bpf_probe_read_kernel;
 * - 'direct' (6.17+): the probe's packet pointer is read-only untrusted
 *   memory to the verifier (a char pointer read from a typed sk_buff), which
 *   a plain load may read, made fault-safe by the JIT: no copy, no call.
 *
 * Contract with the probe's filter region (probes/include/filter.h):
 *   on entry  r8 = address of the packet's first byte (the Ethernet header for
 *             the L2 variant, the IP header for L3), r9 = scratch buffer on
 *             the stack: M[0..15] at 0, captured length at 64, wire length at
 *             68, a 4-byte load buffer at 72, at 76 how many of the packet's
 *             first bytes (at most 64, at most the captured length) were
 *             copied to 80..143 (a prefetch: most loads of a filter fall there
 *             and cost no helper call);
 *   on exit   r0 = the classic program's return value (0: no match), and
 *             control falls off the end of the generated code.
 *   r6 holds A, r7 holds X; r0-r5 are scratch (the helper call clobbers them).
 *   'direct' code reads neither the prefetch nor the load buffer: the probe
 *   does not fill them (CONFIG_DIRECT_LOADS).
 */
import type { CbpfInsnRaw as CbpfInsn } from '../bpf/native/libpcap.js';
import { Alu, Class, Helper, Jmp, Mode, Size, Src, TO_BE, type EbpfInsn, insn } from '../bpf/insn.js';

export const R_A = 6;
export const R_X = 7;
export const R_DATA = 8;
export const R_SCRATCH = 9;
export const SCRATCH = { mem: 0, caplen: 64, wirelen: 68, buf: 72, prefetched: 76, prefetch: 80, size: 144 } as const;
export const PREFETCH_BYTES = 64;

/** How translated code reads packet bytes (see above); the probe's build and configuration must agree. */
export type PacketLoads = 'copy' | 'direct';

// Classic BPF fields.
const cls = (c: number) => c & 0x07;
const size = (c: number) => c & 0x18;
const mode = (c: number) => c & 0xe0;
const op = (c: number) => c & 0xf0;
const src = (c: number) => c & 0x08;
const C = { LD: 0, LDX: 1, ST: 2, STX: 3, ALU: 4, JMP: 5, RET: 6, MISC: 7 } as const;
const M = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, LEN: 0x80, MSH: 0xa0 } as const;

export class TranslateError extends Error {
  override name = 'TranslateError';
}

/** A jump whose target is resolved once every block has its place. */
type Target = { to: 'insn'; index: number } | { to: 'fail' } | { to: 'end' };
interface Pending {
  at: number;
  target: Target;
}

class Emitter {
  readonly code: EbpfInsn[] = [];
  readonly pending: Pending[] = [];
  emit(...insns: EbpfInsn[]): void {
    this.code.push(...insns);
  }
  /** A jump instruction whose offset is filled in later. */
  jump(i: EbpfInsn, target: Target): void {
    this.pending.push({ at: this.code.length, target });
    this.code.push(i);
  }
}

const mov32K = (dst: number, k: number) => insn(Class.ALU | Alu.MOV | Src.K, dst, 0, 0, k);
const mov32X = (dst: number, s: number) => insn(Class.ALU | Alu.MOV | Src.X, dst, s);
const mov64X = (dst: number, s: number) => insn(Class.ALU64 | Alu.MOV | Src.X, dst, s);
const ldxW = (dst: number, base: number, off: number) => insn(Class.LDX | Mode.MEM | Size.W, dst, base, off);
const stxW = (base: number, off: number, s: number) => insn(Class.STX | Mode.MEM | Size.W, base, s, off);
const ja = () => insn(Class.JMP | Jmp.JA);

/**
 * dst = P[off .. off+bytes) in network order, or fail when outside the
 * captured bytes. `off` is in r4 when it is computed (IND); `constOff` is its
 * value when the classic load has a fixed one (ABS, MSH), put in r4 only on
 * the paths that need it. From the prefetched copy when it holds
 * those bytes, else through bpf_probe_read_kernel. The prefetch word counts
 * the bytes it holds, never more than were captured: one comparison decides
 * the fast path, and a fixed offset is one stack load there.
 */
function emitPacketLoad(e: Emitter, dst: number, bytes: 1 | 2 | 4, constOff: number | null, loads: PacketLoads): void {
  if (loads === 'direct') {
    emitDirectLoad(e, dst, bytes, constOff);
    return;
  }
  const slowJumps: number[] = [];
  const toSlow = (i: EbpfInsn) => {
    slowJumps.push(e.code.length);
    e.emit(i);
  };
  const fixed = constOff !== null && constOff + bytes <= PREFETCH_BYTES;
  if (constOff !== null && !fixed) e.emit(mov32K(4, constOff));
  if (fixed) {
    // A fixed offset: the bytes prefetched against the load's end, a constant.
    e.emit(ldxW(1, R_SCRATCH, SCRATCH.prefetched));
    toSlow(insn(Class.JMP | Jmp.JLT | Src.K, 1, 0, 0, constOff + bytes));
    const at = SCRATCH.prefetch + constOff;
    if (at % bytes === 0) {
      // Aligned: one load of the whole field.
      e.emit(insn(Class.LDX | Mode.MEM | loadSize(bytes), dst, R_SCRATCH, at));
      if (bytes > 1) e.emit(insn(Class.ALU | Alu.END | TO_BE, dst, 0, 0, bytes * 8));
    } else {
      emitByteLoads(e, dst, bytes, R_SCRATCH, at);
    }
  } else {
    e.emit(mov64X(5, 4), insn(Class.ALU64 | Alu.ADD | Src.K, 5, 0, 0, bytes), ldxW(1, R_SCRATCH, SCRATCH.prefetched));
    toSlow(insn(Class.JMP | Jmp.JGT | Src.X, 5, 1));
    // A computed offset: the constant bound on r4 is what lets the verifier accept the stack load.
    toSlow(insn(Class.JMP | Jmp.JGT | Src.K, 4, 0, 0, PREFETCH_BYTES - bytes));
    e.emit(mov64X(1, R_SCRATCH), insn(Class.ALU64 | Alu.ADD | Src.X, 1, 4));
    emitByteLoads(e, dst, bytes, 1, SCRATCH.prefetch);
  }
  const doneJump = e.code.length;
  e.emit(ja());
  const slow = e.code.length;
  for (const at of slowJumps) e.code[at]!.off = slow - (at + 1);

  // The offset and the load's end, in r4 and r5 (the fast path of a fixed offset did without them).
  if (fixed) e.emit(mov32K(4, constOff), mov64X(5, 4), insn(Class.ALU64 | Alu.ADD | Src.K, 5, 0, 0, bytes));
  e.emit(ldxW(1, R_SCRATCH, SCRATCH.caplen));
  e.jump(insn(Class.JMP | Jmp.JGT | Src.X, 5, 1), { to: 'fail' });
  e.emit(
    mov64X(1, R_SCRATCH),
    insn(Class.ALU64 | Alu.ADD | Src.K, 1, 0, 0, SCRATCH.buf),
    insn(Class.ALU64 | Alu.MOV | Src.K, 2, 0, 0, bytes),
    mov64X(3, R_DATA),
    insn(Class.ALU64 | Alu.ADD | Src.X, 3, 4),
    insn(Class.JMP | Jmp.CALL, 0, 0, 0, Helper.probe_read_kernel),
  );
  e.jump(insn(Class.JMP | Jmp.JNE | Src.K, 0, 0, 0, 0), { to: 'fail' });
  e.emit(insn(Class.LDX | Mode.MEM | loadSize(bytes), dst, R_SCRATCH, SCRATCH.buf));
  if (bytes > 1) e.emit(insn(Class.ALU | Alu.END | TO_BE, dst, 0, 0, bytes * 8));
  e.code[doneJump]!.off = e.code.length - (doneJump + 1);
}

/**
 * dst = P[off .. off+bytes) read in place ('direct'), or fail when outside
 * the captured bytes. A fixed offset is checked against a constant and read
 * at it; a computed one (in r4) is added to the packet pointer first.
 */
function emitDirectLoad(e: Emitter, dst: number, bytes: 1 | 2 | 4, constOff: number | null): void {
  const sz = loadSize(bytes);
  e.emit(ldxW(1, R_SCRATCH, SCRATCH.caplen));
  if (constOff !== null && constOff + bytes <= MAX_INSN_OFF) {
    e.jump(insn(Class.JMP | Jmp.JLT | Src.K, 1, 0, 0, constOff + bytes), { to: 'fail' });
    e.emit(insn(Class.LDX | Mode.MEM | sz, dst, R_DATA, constOff));
  } else {
    if (constOff !== null) e.emit(mov32K(4, constOff));
    e.emit(mov64X(5, 4), insn(Class.ALU64 | Alu.ADD | Src.K, 5, 0, 0, bytes));
    e.jump(insn(Class.JMP | Jmp.JGT | Src.X, 5, 1), { to: 'fail' });
    e.emit(mov64X(2, R_DATA), insn(Class.ALU64 | Alu.ADD | Src.X, 2, 4), insn(Class.LDX | Mode.MEM | sz, dst, 2, 0));
  }
  if (bytes > 1) e.emit(insn(Class.ALU | Alu.END | TO_BE, dst, 0, 0, bytes * 8));
}

const loadSize = (bytes: 1 | 2 | 4) => (bytes === 1 ? Size.B : bytes === 2 ? Size.H : Size.W);

/** The largest offset an instruction holds (a signed 16-bit field). */
const MAX_INSN_OFF = 0x7fff;

/** dst = `bytes` bytes at base+off, big-endian, one byte at a time (stack loads must be aligned). */
function emitByteLoads(e: Emitter, dst: number, bytes: number, base: number, off: number): void {
  for (let i = 0; i < bytes; i++) {
    const reg = i === 0 ? dst : 2;
    e.emit(insn(Class.LDX | Mode.MEM | Size.B, reg, base, off + i));
    if (i > 0) e.emit(insn(Class.ALU | Alu.LSH | Src.K, dst, 0, 0, 8), insn(Class.ALU | Alu.OR | Src.X, dst, 2));
  }
}

function bytesOf(c: number, i: number): 1 | 2 | 4 {
  switch (size(c)) {
    case 0x00: return 4;
    case 0x08: return 2;
    case 0x10: return 1;
    default: throw new TranslateError(`instruction ${i}: unknown load size 0x${c.toString(16)}`);
  }
}

function memOffset(k: number, i: number): number {
  if (k < 0 || k > 15) throw new TranslateError(`instruction ${i}: scratch memory index ${k} out of range`);
  return SCRATCH.mem + 4 * k;
}

/** Which classic instructions can run: the verifier refuses unreachable eBPF, so dead ones are not emitted. */
function reachable(prog: CbpfInsn[]): boolean[] {
  const seen = new Array<boolean>(prog.length).fill(false);
  const work = [0];
  while (work.length > 0) {
    const i = work.pop()!;
    if (i >= prog.length || seen[i]) continue;
    seen[i] = true;
    const c = prog[i]!.code;
    if (cls(c) === C.RET) continue;
    if (cls(c) === C.JMP) {
      if (op(c) === Jmp.JA) work.push(i + 1 + (prog[i]!.k >>> 0));
      else work.push(i + 1 + prog[i]!.jt, i + 1 + prog[i]!.jf);
    } else {
      work.push(i + 1);
    }
  }
  return seen;
}

/** Translates a classic program; the result falls through at its end with the verdict in r0. */
export function translate(prog: CbpfInsn[], loads: PacketLoads = 'copy'): EbpfInsn[] {
  if (prog.length === 0) throw new TranslateError('empty program');
  const live = reachable(prog);
  const e = new Emitter();
  const starts: number[] = [];
  e.emit(mov32K(R_A, 0), mov32K(R_X, 0));

  prog.forEach((ins, i) => {
    starts.push(e.code.length);
    if (!live[i]) return;
    const c = ins.code;
    const k = ins.k >>> 0;
    const next = (d: number): Target => {
      const index = i + 1 + d;
      if (index >= prog.length) throw new TranslateError(`instruction ${i}: jump past the end`);
      return { to: 'insn', index };
    };
    switch (cls(c)) {
      case C.LD:
      case C.LDX: {
        const dst = cls(c) === C.LD ? R_A : R_X;
        const m = mode(c);
        if (m === M.IMM) e.emit(mov32K(dst, k));
        else if (m === M.LEN) e.emit(ldxW(dst, R_SCRATCH, SCRATCH.wirelen));
        else if (m === M.MEM) e.emit(ldxW(dst, R_SCRATCH, memOffset(k, i)));
        else if (m === M.ABS && dst === R_A) {
          emitPacketLoad(e, R_A, bytesOf(c, i), k, loads);
        } else if (m === M.IND && dst === R_A) {
          e.emit(mov32K(4, k), mov32X(5, R_X), insn(Class.ALU64 | Alu.ADD | Src.X, 4, 5));
          emitPacketLoad(e, R_A, bytesOf(c, i), null, loads);
        } else if (m === M.MSH && dst === R_X) {
          emitPacketLoad(e, R_X, 1, k, loads);
          e.emit(insn(Class.ALU | Alu.AND | Src.K, R_X, 0, 0, 0xf), insn(Class.ALU | Alu.LSH | Src.K, R_X, 0, 0, 2));
        } else throw new TranslateError(`instruction ${i}: unsupported load 0x${c.toString(16)}`);
        break;
      }
      case C.ST:
        e.emit(stxW(R_SCRATCH, memOffset(k, i), R_A));
        break;
      case C.STX:
        e.emit(stxW(R_SCRATCH, memOffset(k, i), R_X));
        break;
      case C.ALU: {
        const o = op(c);
        if (o === Alu.NEG) {
          e.emit(insn(Class.ALU | Alu.NEG, R_A));
          break;
        }
        if (![Alu.ADD, Alu.SUB, Alu.MUL, Alu.DIV, Alu.OR, Alu.AND, Alu.LSH, Alu.RSH, Alu.MOD, Alu.XOR].includes(o as never)) {
          throw new TranslateError(`instruction ${i}: unsupported ALU op 0x${c.toString(16)}`);
        }
        if (src(c) === Src.X) {
          // Classic BPF rejects the packet on division by zero; eBPF would yield 0 and go on.
          if (o === Alu.DIV || o === Alu.MOD) e.jump(insn(Class.JMP32 | Jmp.JEQ | Src.K, R_X, 0, 0, 0), { to: 'fail' });
          e.emit(insn(Class.ALU | o | Src.X, R_A, R_X));
        } else if ((o === Alu.DIV || o === Alu.MOD) && k === 0) {
          e.jump(ja(), { to: 'fail' });
        } else if ((o === Alu.LSH || o === Alu.RSH) && k >= 32) {
          e.emit(mov32K(R_A, 0));
        } else {
          e.emit(insn(Class.ALU | o | Src.K, R_A, 0, 0, k));
        }
        break;
      }
      case C.JMP: {
        const o = op(c);
        if (o === Jmp.JA) {
          e.jump(ja(), next(k));
          break;
        }
        if (![Jmp.JEQ, Jmp.JGT, Jmp.JGE, Jmp.JSET].includes(o as never)) {
          throw new TranslateError(`instruction ${i}: unsupported jump 0x${c.toString(16)}`);
        }
        const cmp = src(c) === Src.X
          ? insn(Class.JMP32 | o | Src.X, R_A, R_X)
          : insn(Class.JMP32 | o | Src.K, R_A, 0, 0, k);
        e.jump(cmp, next(ins.jt));
        if (ins.jf !== 0) e.jump(ja(), next(ins.jf));
        break;
      }
      case C.RET: {
        const rv = c & 0x18;
        if (rv === 0x00) e.emit(mov32K(0, k));
        else if (rv === 0x10) e.emit(mov32X(0, R_A));
        else throw new TranslateError(`instruction ${i}: unsupported return 0x${c.toString(16)}`);
        e.jump(ja(), { to: 'end' });
        break;
      }
      case C.MISC: {
        if ((c & 0xf8) === 0x00) e.emit(mov32X(R_X, R_A));
        else if ((c & 0xf8) === 0x80) e.emit(mov32X(R_A, R_X));
        else throw new TranslateError(`instruction ${i}: unsupported misc 0x${c.toString(16)}`);
        break;
      }
      default:
        throw new TranslateError(`instruction ${i}: unknown class 0x${c.toString(16)}`);
    }
  });

  // Falling off the last instruction cannot happen in a valid classic program; reject if it does.
  // The shared rejection is emitted only when something jumps to it: the verifier refuses dead code.
  const lastLive = live.lastIndexOf(true);
  const fallsOff = cls(prog[lastLive]!.code) !== C.RET;
  const needFail = fallsOff || e.pending.some((p) => p.target.to === 'fail');
  const fail = e.code.length;
  if (needFail) e.emit(mov32K(0, 0));
  const end = e.code.length;

  for (const p of e.pending) {
    const target = p.target.to === 'insn' ? starts[p.target.index]! : p.target.to === 'fail' ? fail : end;
    const off = target - (p.at + 1);
    if (off < -32768 || off > 32767) throw new TranslateError('program too large for eBPF jump offsets');
    e.code[p.at]!.off = off;
  }
  return e.code;
}
