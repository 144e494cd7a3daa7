/**
 * The running kernel's BTF, as pktpath's own queries read it: where it is
 * (or the file --kernel-btf names instead), mapped or read, parsed once and
 * forgotten on request. The reader itself is ./btf.ts.
 */
import { readFileSync } from 'node:fs';
import { Btf } from './btf.js';
import { MiB, readRegularFile } from '../input-file.js';
import { mapFile } from '../native/libc.js';

/** The running kernel's own BTF. */
export const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

let vmlinux: Btf | null | undefined;
let kernelBtfMapping: Uint8Array | null = null;

/**
 * The kernel's BTF, mapped where the kernel lets it be (6.16+) and kept so for
 * the process: sysfs hands out a read 4 KiB at a time, ~1300 system calls for
 * vmlinux's 5 MB (10–20 ms of each start here), where the mapping costs under
 * one. Read where it cannot be mapped.
 */
function kernelBtfBytes(): Uint8Array {
  kernelBtfMapping ??= mapFile(KERNEL_BTF);
  return kernelBtfMapping ?? readFileSync(KERNEL_BTF);
}

let customPath: string | null = null;

/** The largest BTF file read for --kernel-btf: a kernel's is a few MiB (vmlinux's ~5 MiB). */
export const BTF_FILE_LIMIT = 256 * MiB;

/** A BTF file given instead of the kernel's, parsed: a regular file, bounded (it may be anyone's). */
function loadBtfFile(path: string): Btf {
  return Btf.parse(readRegularFile(path, BTF_FILE_LIMIT, 'a kernel\'s BTF is a few MiB'));
}

/**
 * Use this BTF file instead of the kernel's (--kernel-btf): for pktpath's own
 * queries and for libbpf's CO-RE relocations. Parsed at once: a file that is
 * not BTF throws here, before anything is loaded; one that is not a regular
 * file, or too large, throws InputFileRefused.
 */
export function useKernelBtf(path: string): Btf {
  const btf = loadBtfFile(path);
  customPath = path;
  vmlinux = btf;
  return btf;
}

/** The BTF file given instead of the kernel's, or null. */
export function kernelBtfPath(): string | null {
  return customPath;
}

/**
 * Forgets the parsed BTF (tens of MB of heap): a tracer calls it once it has
 * asked all it needs; a later vmlinuxBtf() parses it again.
 */
export function releaseVmlinuxBtf(): void {
  vmlinux = undefined;
}

/** The running kernel's BTF, parsed once; null when the kernel has none (CONFIG_DEBUG_INFO_BTF). */
export function vmlinuxBtf(): Btf | null {
  if (vmlinux === undefined) {
    try {
      vmlinux = customPath === null ? Btf.parse(kernelBtfBytes()) : loadBtfFile(customPath);
    } catch {
      vmlinux = null;
    }
  }
  return vmlinux;
}
