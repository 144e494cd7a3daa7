/**
 * Which kernel functions take an skb, and which of them can be probed: every
 * FUNC of the kernel's BTF (vmlinux, then each module's split BTF under
 * /sys/kernel/btf) with a `struct sk_buff *` among its first five arguments,
 * less those ftrace cannot hook (absent from available_filter_functions:
 * notrace, inlined away) and those on the kprobe blacklist.
 *
 * Those two lists live in tracefs and debugfs. Where they are not mounted,
 * they are read from a private mount namespace (`unshare --mount`), so
 * nothing stays mounted. Where the kernel refuses them (no ftrace), the BTF
 * list stands unfiltered, and attaching says what fails.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Btf } from '../bpf/btf/btf.js';
import { vmlinuxBtf } from '../bpf/btf/vmlinux.js';
import { capability } from './caps.js';
import { functionsTakingPointerTo } from './btf.js';

export interface SkbFunction {
  name: string;
  /** 0-based position of the skb among the arguments. */
  skbArg: number;
  /** The module whose BTF declares it; null for the core kernel. */
  module: string | null;
}

export interface FunctionDiscovery {
  functions: SkbFunction[];
  /** How the list was narrowed to probeable functions, or why it was not. */
  filteredBy: string;
}

const BTF_DIR = '/sys/kernel/btf';
const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];
const KPROBE_BLACKLIST = '/sys/kernel/debug/kprobes/blacklist';

const moduleBtfs = new Map<string, Btf | null>();

/** A module's split BTF (on vmlinux's), read once; null when it cannot be read (unloaded, or BTF this parser does not know). */
export function moduleBtf(module: string, btf: Btf | null = vmlinuxBtf(), btfDir = BTF_DIR): Btf | null {
  if (!btf) return null;
  let m = moduleBtfs.get(module);
  if (m === undefined) {
    try {
      m = Btf.loadSplit(path.join(btfDir, module), btf);
    } catch {
      m = null;
    }
    if (btfDir === BTF_DIR) moduleBtfs.set(module, m);
  }
  return m;
}

/** Whether the module is loaded (with or without BTF). */
export function moduleLoaded(module: string): boolean {
  return fs.existsSync(path.join('/sys/module', module));
}

/** Whether the module is loaded with BTF of its own (its functions can be found and probed). */
export function moduleHasBtf(module: string, btfDir = BTF_DIR): boolean {
  return fs.existsSync(path.join(btfDir, module));
}

/** Every function taking an skb, from vmlinux and module BTF; the first declaration of a name wins. */
export function btfSkbFunctions(btf: Btf | null = vmlinuxBtf(), btfDir = BTF_DIR): SkbFunction[] {
  if (!btf) return [];
  const seen = new Set<string>();
  const out: SkbFunction[] = [];
  const add = (blob: Btf, module: string | null) => {
    for (const f of functionsTakingPointerTo(blob, 'sk_buff', 5)) {
      if (seen.has(f.name)) continue;
      seen.add(f.name);
      out.push({ name: f.name, skbArg: f.position - 1, module });
    }
  };
  add(btf, null);
  let modules: string[] = [];
  try {
    modules = fs.readdirSync(btfDir).filter((m) => m !== 'vmlinux').sort();
  } catch {
    // No module BTF.
  }
  for (const m of modules) {
    // A module unloaded while reading, or BTF this parser does not know: its functions are left out.
    const blob = moduleBtf(m, btf, btfDir);
    if (blob) add(blob, m);
  }
  return out;
}

/** The names in available_filter_functions (`name` or `name [module]` per line). */
export function parseFilterFunctions(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.split(/\s/, 1)[0];
    if (name) out.add(name);
  }
  return out;
}

/** The names on the kprobe blacklist (`0xstart-0xend\tname` per line). */
export function parseKprobeBlacklist(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.split('\t')[1]?.trim();
    if (name) out.add(name);
  }
  return out;
}

interface TracingLists {
  filterFunctions: string | null;
  blacklist: string | null;
  /** Why available_filter_functions could not be read. */
  error: string | null;
}

function readIfThere(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The two lists, read where mounted, else from a private mount namespace that mounts tracefs and debugfs for itself. */
function tracingLists(): TracingLists {
  for (const dir of TRACEFS) {
    const text = readIfThere(path.join(dir, 'available_filter_functions'));
    if (text !== null) return { filterFunctions: text, blacklist: readIfThere(KPROBE_BLACKLIST), error: null };
  }
  // A constant script: nothing of the user's reaches the shell.
  const script = 'mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; mount -t debugfs nodev /sys/kernel/debug 2>/dev/null; ' +
    'cat /sys/kernel/tracing/available_filter_functions || exit 3; echo "--- blacklist"; cat /sys/kernel/debug/kprobes/blacklist 2>/dev/null; exit 0';
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').pop()!.replace(/^cat: /, '');
    return { filterFunctions: null, blacklist: null, error: why };
  }
  const [functions, blacklist] = r.stdout.split('--- blacklist\n');
  return { filterFunctions: functions ?? '', blacklist: blacklist ?? null, error: null };
}

/** Narrows BTF's list to what ftrace and kprobes accept; pure. */
export function probeableFunctions(all: SkbFunction[], filterFunctions: Set<string> | null, blacklist: Set<string> | null): SkbFunction[] {
  return all.filter((f) => (filterFunctions === null || filterFunctions.has(f.name)) && !blacklist?.has(f.name));
}

let discovered: FunctionDiscovery | undefined;

/** The probeable skb functions of the running kernel, worked out once per process. */
export function discoverSkbFunctions(): FunctionDiscovery {
  if (discovered) return discovered;
  const all = btfSkbFunctions();
  const lists = tracingLists();
  const filter = lists.filterFunctions === null ? null : parseFilterFunctions(lists.filterFunctions);
  const blacklist = lists.blacklist === null ? null : parseKprobeBlacklist(lists.blacklist);
  const functions = probeableFunctions(all, filter, blacklist);
  const filteredBy = filter
    ? `${all.length} in BTF, ${functions.length} in available_filter_functions${blacklist ? ' and off the kprobe blacklist' : ''}`
    : `${all.length} in BTF, not narrowed: available_filter_functions is unreadable here (${lists.error})`;
  discovered = { functions, filteredBy };
  return discovered;
}

/** The ways pktpath can probe a kernel function, best first for a large set. */
export type FunctionBackend = 'kprobe-multi' | 'kprobe' | 'fentry';
export const FUNCTION_BACKENDS: readonly FunctionBackend[] = ['kprobe-multi', 'kprobe', 'fentry'];

export interface BackendAvailability {
  backend: FunctionBackend;
  ok: boolean;
  /** "works", or what the kernel said when tried. */
  detail: string;
}

/** Each function backend, as the capability model found it (tried for real: never guessed from the version). */
export function functionBackends(): BackendAvailability[] {
  return FUNCTION_BACKENDS.map((backend) => {
    const { ok, detail } = capability(backend);
    return { backend, ok, detail };
  });
}
