/**
 * A file descriptor of a BPF object (map, program), never passed around as a
 * bare number: a handle either owns it (closing the handle closes the fd) or
 * borrows it from one that does (closing forgets it, the owner closes). In
 * the style of cilium/ebpf's sys.FD; links (./link.ts) own theirs the same way.
 */
import { c } from './native/libc.js';

export class Fd {
  private constructor(private value: number, readonly owned: boolean) {}

  /** Takes `fd` over: closing the handle closes it. */
  static own(fd: number): Fd {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`not an fd: ${fd}`);
    return new Fd(fd, true);
  }

  /** Uses `fd` while whoever owns it keeps it open (libbpf's objects, another handle). */
  static borrow(fd: number): Fd {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`not an fd: ${fd}`);
    return new Fd(fd, false);
  }

  /** A handle on the same fd that does not close it. */
  borrow(): Fd {
    return Fd.borrow(this.raw);
  }

  /** The number, for a system call; a closed handle has none. */
  get raw(): number {
    if (this.value < 0) throw new Error('a closed fd was used');
    return this.value;
  }

  get closed(): boolean {
    return this.value < 0;
  }

  close(): void {
    if (this.value < 0) return;
    if (this.owned) c.close(this.value);
    this.value = -1;
  }
}
