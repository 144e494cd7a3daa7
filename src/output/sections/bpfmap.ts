/**
 * The BPF map section (--output-bpfmap, probes/include/sections/bpfmap.h): a
 * map operation of a traced BPF program, seen as one of its helper calls
 * (--filter-track-bpf-helpers): the map's id and name, and the first 64 bytes
 * of its key and value (an update's new value, a lookup's result), read with
 * the map's BTF key and value types where it has them. Text:
 * `map#12 cni_policy update key={ip=0xc0000202} value={action=1, hits=3}`.
 */
import { formatBtfValue } from '../../bpf/btf/value.js';
import { type MapTypes, mapTypes } from '../../bpf/loaded.js';
import { escapeText } from '../escape.js';
import { section } from './section.js';

/** BPFMAP_BYTES: the bytes of a key and of a value a record holds at most. */
export const BPFMAP_BYTES = 64;

export type BpfmapOp = 'lookup' | 'update' | 'delete';
/** enum bpfmap_op, by number. */
const OPS: ReadonlyArray<BpfmapOp | undefined> = [undefined, 'lookup', 'update', 'delete'];

export interface BpfmapRaw {
  id: number;
  name: string;
  op: BpfmapOp;
  keySize: number;
  valueSize: number;
  key: Uint8Array;
  /** null: a delete, or a lookup that found nothing. */
  value: Uint8Array | null;
}

export interface BpfmapOperation {
  op: BpfmapOp;
  mapId: number;
  /** As the kernel has it (another program's name): escaped where printed. */
  mapName: string;
  keySize: number;
  valueSize: number;
  /** Hex of the bytes held: up to BPFMAP_BYTES of each. */
  key: string;
  value: string | null;
  /** Read with the map's BTF; null where the map has none. */
  keyText: string | null;
  valueText: string | null;
}

export interface JsonBpfmap {
  op: BpfmapOp;
  map_id: number;
  map_name: string;
  key_size: number;
  value_size: number;
  key: string;
  value: string | null;
  key_text: string | null;
  value_text: string | null;
}

const LAYOUT = {
  struct: 'bpfmap_section', size: 32 + 2 * BPFMAP_BYTES,
  fields: { id: 0, key_size: 4, value_size: 8, op: 12, has_value: 13, name: 16, key: 32, value: 32 + BPFMAP_BYTES },
} as const;

/** The map's key and value as its BTF reads them (types looked up in the kernel by the caller). */
export function bpfmapOperation(r: BpfmapRaw, types: MapTypes | null): BpfmapOperation {
  const key = r.key.subarray(0, Math.min(r.keySize, BPFMAP_BYTES));
  const value = r.value?.subarray(0, Math.min(r.valueSize, BPFMAP_BYTES)) ?? null;
  const btf = types?.btf ?? null;
  return {
    op: r.op, mapId: r.id, mapName: r.name, keySize: r.keySize, valueSize: r.valueSize,
    key: Buffer.from(key).toString('hex'), value: value && Buffer.from(value).toString('hex'),
    keyText: btf && btf.key !== 0 ? formatBtfValue(btf.btf, btf.key, key) : null,
    valueText: btf && value ? formatBtfValue(btf.btf, btf.value, value) : null,
  };
}

/** Maps of the running kernel by id, described once each (ids are not reused while a trace runs: the kernel counts them up). */
const described = new Map<number, MapTypes | null>();
const MAX_DESCRIBED = 1024;
function liveMapTypes(id: number): MapTypes | null {
  let t = described.get(id);
  if (t === undefined) {
    if (described.size >= MAX_DESCRIBED) described.clear();
    t = mapTypes(id);
    described.set(id, t);
  }
  return t;
}

function formatBpfmap(m: BpfmapOperation): string {
  const cut = (size: number) => (size > BPFMAP_BYTES ? '…' : '');
  let s = `map#${m.mapId} ${escapeText(m.mapName)} ${m.op} key=${escapeText(m.keyText ?? m.key + cut(m.keySize))}`;
  if (m.value !== null) s += ` value=${escapeText(m.valueText ?? m.value + cut(m.valueSize))}`;
  return s;
}

export const bpfmapSection = section({
  key: 'bpfmap',
  kind: 16,
  header: 'bpfmap.h',
  layout: LAYOUT,
  decode: (view, bytes, at): BpfmapRaw | null => {
    const F = LAYOUT.fields;
    const op = OPS[view.getUint8(at + F.op)];
    if (op === undefined) return null;
    const nameBytes = bytes.subarray(at + F.name, at + F.name + 16);
    const end = nameBytes.indexOf(0);
    return {
      id: view.getUint32(at + F.id, true),
      name: Buffer.from(end < 0 ? nameBytes : nameBytes.subarray(0, end)).toString('latin1'),
      op,
      keySize: view.getUint32(at + F.key_size, true),
      valueSize: view.getUint32(at + F.value_size, true),
      key: bytes.slice(at + F.key, at + F.key + BPFMAP_BYTES),
      value: view.getUint8(at + F.has_value) ? bytes.slice(at + F.value, at + F.value + BPFMAP_BYTES) : null,
    };
  },
  enrich: (r: BpfmapRaw, ctx): BpfmapOperation => bpfmapOperation(r, (ctx.maps ?? liveMapTypes)(r.id)),
  text: formatBpfmap,
  jsonKey: 'bpfmap',
  toJson: (m: BpfmapOperation): JsonBpfmap => ({
    op: m.op, map_id: m.mapId, map_name: m.mapName, key_size: m.keySize, value_size: m.valueSize,
    key: m.key, value: m.value, key_text: m.keyText, value_text: m.valueText,
  }),
  fromJson: (j: JsonBpfmap): BpfmapOperation => ({
    op: j.op, mapId: j.map_id, mapName: j.map_name, keySize: j.key_size, valueSize: j.value_size,
    key: j.key, value: j.value, keyText: j.key_text, valueText: j.value_text,
  }),
  schema: {
    description: 'With --output-bpfmap, at a map operation of a traced BPF program (a helper call, --filter-track-bpf-helpers): the map, and the first 64 bytes of its key and value, read with the map\'s BTF where it has one.',
    type: 'object',
    properties: {
      op: { enum: ['lookup', 'update', 'delete'] },
      map_id: { type: 'integer', minimum: 0 },
      map_name: { type: 'string' },
      key_size: { type: 'integer', minimum: 0 },
      value_size: { type: 'integer', minimum: 0 },
      key: { description: 'Hex of the key\'s first 64 bytes at most.', type: 'string', pattern: '^([0-9a-f]{2})*$' },
      value: { description: 'Hex of the value\'s first 64 bytes at most: the new value of an update, what a lookup found; null for a delete or a lookup that found nothing.', oneOf: [{ type: 'string', pattern: '^([0-9a-f]{2})*$' }, { type: 'null' }] },
      key_text: { description: 'The key read with the map\'s BTF key type; null without BTF.', type: ['string', 'null'] },
      value_text: { description: 'The value read with the map\'s BTF value type; null without BTF or without a value.', type: ['string', 'null'] },
    },
    required: ['op', 'map_id', 'map_name', 'key_size', 'value_size', 'key', 'value', 'key_text', 'value_text'],
    additionalProperties: false,
  },
  options: [{
    flags: '--output-bpfmap',
    description: 'with --filter-track-bpf-helpers, the map operations of traced programs: map id and name, the first 64 bytes of key and value, ' +
      'read with the map\'s BTF (lookups of array maps are inlined by the verifier: not seen; hash lookups, updates and deletes are)',
    live: true,
  }],
});
