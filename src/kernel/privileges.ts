/** Whether this process may load and attach probes, read from its effective capabilities. */
import fs from 'node:fs';

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

export function effectiveCaps(status = fs.readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/** Null when allowed, else what is missing. */
export function missingPrivileges(caps = effectiveCaps()): string | null {
  const has = (bit: number) => (caps >> BigInt(bit)) & 1n;
  const bpf = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
  const missing: string[] = [];
  if (!bpf) missing.push('CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)');
  if (!has(CAP_NET_ADMIN)) missing.push('CAP_NET_ADMIN');
  if (!has(CAP_SYS_ADMIN)) missing.push('CAP_SYS_ADMIN (to enter network namespaces)');
  return missing.length ? missing.join(', ') : null;
}
