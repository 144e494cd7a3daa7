/**
 * A program loaded from instructions built in user space (no object file):
 * what the kernel's capabilities are tried with. The handle owns the program's fd.
 */
import { BpfError, remedyFor } from './errors.js';
import { type EbpfInsn, encode } from './insn.js';
import { debugVerifierLog } from './log.js';
import { progLoad } from './native/libbpf.js';
import { Fd } from './fd.js';

export interface ProgramSpec {
  type: number;
  /** The kernel keeps 15 characters. */
  name: string;
  insns: EbpfInsn[];
  expectedAttachType?: number;
  /** BTF id of the attach target in vmlinux (tracing programs). */
  attachBtfId?: number;
  license?: string;
}

const LOG_SIZE = 64 * 1024;

export class Program {
  private constructor(readonly fd: Fd, readonly name: string) {}

  static load(spec: ProgramSpec): Program {
    const log = Buffer.alloc(LOG_SIZE);
    const fd = progLoad(spec.type, spec.name, spec.license ?? 'Dual BSD/GPL', encode(spec.insns), {
      expectedAttachType: spec.expectedAttachType ?? 0,
      attachBtfId: spec.attachBtfId ?? 0,
      log,
    });
    const text = log.toString('utf8', 0, Math.max(0, log.indexOf(0)));
    debugVerifierLog(spec.name, text);
    if (fd < 0) {
      const tail = text.split('\n').filter((l) => l.trim() !== '').slice(-5);
      throw new BpfError(`loading ${spec.name}`, fd, tail, remedyFor(fd));
    }
    return new Program(Fd.own(fd), spec.name);
  }

  close(): void {
    this.fd.close();
  }
}
