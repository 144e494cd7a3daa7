/**
 * Minimal ELF64 little-endian reader: section names and contents, enough to
 * pull `.BTF` out of a compiled eBPF object.
 */

import { readFileSync } from 'node:fs';

export interface ElfSection {
  /** File offset of the contents. */
  offset: number;
  size: number;
  /** sh_type: 1 PROGBITS, 2 SYMTAB, 3 STRTAB, 8 NOBITS, ... */
  type: number;
  index: number;
  flags: number;
}

export const SHT_NOBITS = 8;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SHN_XINDEX = 0xffff;

/** Sections by name; for duplicate names the first one wins. */
export function readElfSections(buf: Uint8Array): Map<string, ElfSection> {
  if (buf.byteLength < EHDR_SIZE || buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) {
    throw new Error('ELF: not an ELF file');
  }
  if (buf[4] !== 2) throw new Error('ELF: only 64-bit objects are supported');
  if (buf[5] !== 1) throw new Error('ELF: only little-endian objects are supported');
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shoff = u64(v, 40);
  const shentsize = v.getUint16(58, true);
  let shnum = v.getUint16(60, true);
  let shstrndx = v.getUint16(62, true);
  const sections = new Map<string, ElfSection>();
  if (shoff === 0) return sections;
  if (shentsize < SHDR_SIZE) throw new Error(`ELF: bad section header size ${shentsize}`);
  if (shoff + SHDR_SIZE > buf.byteLength) throw new Error('ELF: section headers past end of file');
  // Objects with ≥ 0xff00 sections keep the real counts in section 0.
  if (shnum === 0) shnum = u64(v, shoff + 32);
  if (shstrndx === SHN_XINDEX) shstrndx = v.getUint32(shoff + 40, true);
  if (shoff + shnum * shentsize > buf.byteLength) throw new Error('ELF: section headers past end of file');
  if (shstrndx >= shnum) throw new Error('ELF: bad section name table index');

  const hdr = (i: number) => shoff + i * shentsize;
  const strtabOff = u64(v, hdr(shstrndx) + 24);
  const strtabSize = u64(v, hdr(shstrndx) + 32);
  if (strtabOff + strtabSize > buf.byteLength) throw new Error('ELF: section name table past end of file');
  const strtab = buf.subarray(strtabOff, strtabOff + strtabSize);
  const decoder = new TextDecoder();

  for (let i = 1; i < shnum; i++) {
    const h = hdr(i);
    const nameOff = v.getUint32(h, true);
    const type = v.getUint32(h + 4, true);
    const flags = u64(v, h + 8);
    const offset = u64(v, h + 24);
    const size = u64(v, h + 32);
    if (type !== SHT_NOBITS && offset + size > buf.byteLength) {
      throw new Error(`ELF: section ${i} extends past end of file`);
    }
    let end = strtab.indexOf(0, nameOff);
    if (end < 0) end = strtab.length;
    const name = decoder.decode(strtab.subarray(nameOff, end));
    if (!sections.has(name)) sections.set(name, { offset, size, type, index: i, flags });
  }
  return sections;
}

/** Contents of section `name` of `buf` (a view, not a copy), or null when absent. */
export function elfSectionData(buf: Uint8Array, name: string): Uint8Array | null {
  const s = readElfSections(buf).get(name);
  if (!s) return null;
  if (s.type === SHT_NOBITS) return new Uint8Array(s.size);
  return buf.subarray(s.offset, s.offset + s.size);
}

/** Contents of section `name` of the ELF file at `path`, or null when absent. */
export function readElfSection(path: string, name: string): Uint8Array | null {
  return elfSectionData(readFileSync(path), name);
}

function u64(v: DataView, at: number): number {
  const n = v.getBigUint64(at, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('ELF: offset out of range');
  return Number(n);
}
