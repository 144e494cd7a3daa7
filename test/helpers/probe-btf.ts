/** The BTF that describes probes/include/event.h, for layout tests. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Btf } from '../../src/bpf/btf/btf.js';
import { readElfSection } from './elf.js';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
export const PROBE = join(root, 'probes/build/tracepoint.bpf.o');

/**
 * The BTF of probes/include/event.h compiled on its own, with a global of each
 * struct and enum: a type only reaches BTF when something refers to it, and
 * the probes refer to the enums only as constants. `sections`: the optional
 * sections' helpers (under probes/include/sections/) and their structs, taken
 * in without their code (PKTPATH_LAYOUT_ONLY).
 */
export function eventBtf(sections: ReadonlyArray<{ header: string; struct: string }> = []): { btf: Btf; from: string; cleanup: () => void } | string {
  const clang = ['clang-19', 'clang'].find((c) => {
    try { execFileSync(c, ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
  });
  if (!clang) {
    // The built probe's BTF has the structs (not the enums, which it only uses as constants).
    const raw = existsSync(PROBE) ? readElfSection(PROBE, '.BTF') : null;
    const btf = raw ? Btf.parse(raw) : null;
    if (btf && btf.findOne('event', 'STRUCT') !== null) return { btf, from: PROBE, cleanup: () => {} };
    return 'no clang to compile probes/include/event.h, and no built probe that describes it';
  }
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-btf-'));
  const src = join(dir, 'layout.c');
  const obj = join(dir, 'layout.o');
  writeFileSync(src, [
    'typedef unsigned char __u8; typedef unsigned short __u16; typedef unsigned int __u32;',
    'typedef int __s32; typedef unsigned long long __u64;',
    '#include "event.h"',
    'struct event pktpath_event_layout;',
    'struct ct_section pktpath_ct_layout;',
    'struct verdict_section pktpath_verdict_layout;',
    'struct section_head pktpath_section_head_layout;',
    'enum section_kind pktpath_section_kind;',
    ...sections.flatMap((s) => [`#include "sections/${s.header}"`, `struct ${s.struct} pktpath_${s.struct}_layout;`]),
    'enum record_type pktpath_record_type;',
    'enum event_flags pktpath_event_flags;',
    'enum config_flags pktpath_config_flags;',
    'enum track_stat pktpath_track_stat;',
    'enum ct_source pktpath_ct_source;',
    '',
  ].join('\n'));
  execFileSync(clang, ['-g', '-O2', '-target', 'bpf', '-DPKTPATH_LAYOUT_ONLY', '-I', join(root, 'probes/include'), '-c', src, '-o', obj]);
  const raw = readElfSection(obj, '.BTF');
  if (!raw) throw new Error(`${obj} has no .BTF`);
  return { btf: Btf.parse(raw), from: obj, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

