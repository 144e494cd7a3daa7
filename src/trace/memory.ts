/**
 * Giving memory back once attached. Attaching parses the kernel's BTF and
 * reads every namespace (tens of MB of short-lived objects); V8 keeps the
 * pages of a heap that grew, and malloc keeps what libbpf freed. One full,
 * compacting collection and a malloc_trim after attaching return both.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { releaseFreeNativeMemory } from '../bpf/native/libc.js';

let gc: (() => void) | null | undefined;

export function releaseMemoryAfterAttach(): void {
  if (gc === undefined) {
    try {
      // The collector as a function, without starting Node with --expose-gc.
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
  releaseFreeNativeMemory();
}
