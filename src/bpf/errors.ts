/** Errors of the loader carry what was being done, the kernel's answer and a remedy. */
import os from 'node:os';

export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  for (const [name, value] of Object.entries(os.constants.errno)) if (value === n) return name;
  return `errno ${n}`;
}

export class BpfError extends Error {
  constructor(
    /** What was being done, e.g. "loading program pktpath_tp for tracepoint kfree_skb". */
    readonly action: string,
    /** Negative errno (or 0 when not from the kernel). */
    readonly errno: number,
    /** The verifier's or libbpf's last lines, when there are any. */
    readonly logTail: string[] = [],
    readonly remedy = '',
  ) {
    super(`${action}: ${errno ? errnoName(errno) : 'failed'}${remedy ? ` (${remedy})` : ''}` +
      (logTail.length ? `\n  ${logTail.join('\n  ')}` : ''));
    this.name = 'BpfError';
  }
}

/** A remedy for the errno most often seen from bpf(2). */
export function remedyFor(errno: number): string {
  switch (-Math.abs(errno)) {
    case -os.constants.errno.EPERM:
      return 'run as root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN); a locked-down kernel may refuse this program type';
    case -os.constants.errno.EACCES:
      return 'the verifier rejected the program; see its log below';
    case -os.constants.errno.EINVAL:
      return 'this kernel does not accept this attach type or argument';
    case -os.constants.errno.ENOENT:
      return 'the attach target does not exist in this kernel';
    case -os.constants.errno.E2BIG:
      return 'the program or map is too large for this kernel';
    case -os.constants.errno.ENOMEM:
      return 'raise RLIMIT_MEMLOCK or reduce --ring-size';
    default:
      return '';
  }
}
