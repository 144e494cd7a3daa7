/** The capability model's answers in words (./caps.ts): what the kernel refused, and where. */
import os from 'node:os';
import { BpfError, errnoName } from '../bpf/errors.js';
import { refusalReason } from '../bpf/log.js';

/** What the kernel refused, in one line: the step, the errno, the verifier's last word. */
export function describeRefusal(e: Error): string {
  if (e instanceof BpfError) {
    const log = refusalReason(e.logTail);
    return `${e.action.replace(/^(loading|attaching|finding) /, '$1: ')} → ${e.errno ? errnoName(e.errno) : 'failed'}` +
      (log ? ` (${log})` : '');
  }
  return e.message.split('\n')[0]!;
}

export function kernelRelease(): string {
  return `${os.type()} ${os.release()} ${os.arch()}`;
}
