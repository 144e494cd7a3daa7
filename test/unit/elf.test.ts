import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { elfSectionData, readElfSection, readElfSections, SHT_NOBITS } from '../helpers/elf.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const PROBE = join(root, 'probes/build/tracepoint.bpf.o');

interface RawSection { name: string; type: number; data?: Uint8Array; size?: number }

/** A relocatable ELF64 LE file: header, section contents, then section headers. */
function buildElf(sections: RawSection[], opts: { extendedCount?: boolean } = {}): Uint8Array {
  const names = ['', ...sections.map((s) => s.name), '.shstrtab'];
  const nameOffsets: number[] = [];
  let shstr = '';
  for (const n of names) { nameOffsets.push(shstr.length); shstr += `${n}\0`; }
  const shstrBytes = Buffer.from(shstr);
  const all: RawSection[] = [{ name: '', type: 0 }, ...sections, { name: '.shstrtab', type: 3, data: shstrBytes }];

  const chunks: Buffer[] = [Buffer.alloc(64)];
  let pos = 64;
  const placed = all.map((s) => {
    const size = s.data ? s.data.length : s.size ?? 0;
    const at = pos;
    if (s.data && s.type !== SHT_NOBITS) { chunks.push(Buffer.from(s.data)); pos += s.data.length; }
    return { at, size };
  });
  const pad = (8 - (pos % 8)) % 8;
  chunks.push(Buffer.alloc(pad));
  pos += pad;
  const shoff = pos;
  for (let i = 0; i < all.length; i++) {
    const h = Buffer.alloc(64);
    h.writeUInt32LE(nameOffsets[i]!, 0);
    h.writeUInt32LE(all[i]!.type, 4);
    h.writeBigUInt64LE(BigInt(i === 0 ? 0 : placed[i]!.at), 24);
    // Section 0 holds the real count when e_shnum is 0.
    const size = i === 0 && opts.extendedCount ? all.length : placed[i]!.size;
    h.writeBigUInt64LE(BigInt(size), 32);
    if (i === 0 && opts.extendedCount) h.writeUInt32LE(all.length - 1, 40);
    chunks.push(h);
  }
  const out = Buffer.concat(chunks);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  out.writeUInt16LE(1, 16); // ET_REL
  out.writeUInt16LE(247, 18); // EM_BPF
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(BigInt(shoff), 40);
  out.writeUInt16LE(64, 52);
  out.writeUInt16LE(64, 58);
  out.writeUInt16LE(opts.extendedCount ? 0 : all.length, 60);
  out.writeUInt16LE(opts.extendedCount ? 0xffff : all.length - 1, 62);
  return out;
}

const sample = (): Uint8Array => buildElf([
  { name: '.text', type: 1, data: Buffer.from([1, 2, 3, 4]) },
  { name: '.BTF', type: 1, data: Buffer.from('btf-bytes') },
  { name: '.bss', type: SHT_NOBITS, size: 32 },
]);

test('synthetic ELF: section table', () => {
  const buf = sample();
  const secs = readElfSections(buf);
  assert.deepEqual([...secs.keys()], ['.text', '.BTF', '.bss', '.shstrtab']);
  const btf = secs.get('.BTF')!;
  assert.equal(btf.type, 1);
  assert.equal(btf.size, 9);
  assert.equal(btf.index, 2);
  assert.equal(Buffer.from(buf.subarray(btf.offset, btf.offset + btf.size)).toString(), 'btf-bytes');
  assert.equal(secs.get('.bss')?.type, SHT_NOBITS);
  assert.equal(secs.get('.bss')?.size, 32);
});

test('synthetic ELF: section contents', () => {
  const buf = sample();
  assert.deepEqual([...elfSectionData(buf, '.text')!], [1, 2, 3, 4]);
  assert.equal(Buffer.from(elfSectionData(buf, '.BTF')!).toString(), 'btf-bytes');
  assert.deepEqual(elfSectionData(buf, '.bss'), new Uint8Array(32));
  assert.equal(elfSectionData(buf, '.missing'), null);
});

test('synthetic ELF: counts kept in section 0', () => {
  const secs = readElfSections(buildElf([{ name: '.BTF', type: 1, data: Buffer.from('x') }], { extendedCount: true }));
  assert.deepEqual([...secs.keys()], ['.BTF', '.shstrtab']);
});

test('ELF: rejects what it cannot read', () => {
  assert.throws(() => readElfSections(Buffer.from('not an elf file at all, definitely not'.repeat(3))), /not an ELF/);
  const elf32 = Buffer.from(sample());
  elf32[4] = 1;
  assert.throws(() => readElfSections(elf32), /64-bit/);
  const be = Buffer.from(sample());
  be[5] = 2;
  assert.throws(() => readElfSections(be), /little-endian/);
  const cut = sample();
  assert.throws(() => readElfSections(cut.subarray(0, cut.length - 10)), /past end/);
});

test('readElfSection: from a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-elf-'));
  try {
    const path = join(dir, 'x.o');
    writeFileSync(path, sample());
    assert.equal(Buffer.from(readElfSection(path, '.BTF')!).toString(), 'btf-bytes');
    assert.equal(readElfSection(path, '.BTF.ext'), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tracepoint.bpf.o: sections of a real probe', { skip: existsSync(PROBE) ? false : `${PROBE} not built` }, () => {
  const buf = readFileSync(PROBE);
  const secs = readElfSections(buf);
  for (const name of ['.BTF', '.BTF.ext', 'license', '.maps', '.strtab']) assert.ok(secs.has(name), `no ${name}`);
  const btf = readElfSection(PROBE, '.BTF')!;
  assert.equal(btf.length, secs.get('.BTF')!.size);
  // BTF magic 0xeB9F, little-endian.
  assert.deepEqual([btf[0], btf[1]], [0x9f, 0xeb]);
  const license = Buffer.from(readElfSection(PROBE, 'license')!).toString('latin1');
  assert.match(license, /GPL/);
});
