/** The BTF type model: kinds and the decoded form of each type. */

export const BTF_MAGIC = 0xeb9f;

export const BtfKind = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export type BtfKindName = Exclude<keyof typeof BtfKind, 'UNKN'>;

export const KIND_NAMES: readonly (BtfKindName | 'VOID')[] = [
  'VOID', 'INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE',
  'CONST', 'RESTRICT', 'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG',
  'TYPE_TAG', 'ENUM64',
];

export interface BtfHeader {
  magic: number;
  version: number;
  flags: number;
  hdrLen: number;
  typeOff: number;
  typeLen: number;
  strOff: number;
  strLen: number;
}

export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  /** Width of a bitfield; 0 for an ordinary member. */
  bitSize: number;
}

export interface BtfEnumValue<V extends number | bigint = number> {
  name: string;
  value: V;
}

export interface BtfParam {
  name: string;
  type: number;
}

export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

export type BtfLinkage = 'static' | 'global' | 'extern';

interface Common {
  id: number;
  name: string;
}

/** Kinds that only point at another type. */
export type BtfRefKind = 'PTR' | 'TYPEDEF' | 'VOLATILE' | 'CONST' | 'RESTRICT' | 'TYPE_TAG';

export type BtfType =
  | (Common & { kind: 'VOID' })
  | (Common & {
      kind: 'INT';
      size: number;
      bits: number;
      bitOffset: number;
      signed: boolean;
      char: boolean;
      bool: boolean;
    })
  | { [K in BtfRefKind]: Common & { kind: K; type: number } }[BtfRefKind]
  | (Common & { kind: 'ARRAY'; type: number; indexType: number; nelems: number })
  | (Common & { kind: 'STRUCT'; size: number; members: BtfMember[] })
  | (Common & { kind: 'UNION'; size: number; members: BtfMember[] })
  | (Common & { kind: 'ENUM'; size: number; signed: boolean; values: BtfEnumValue<number>[] })
  | (Common & { kind: 'ENUM64'; size: number; signed: boolean; values: BtfEnumValue<bigint>[] })
  | (Common & { kind: 'FWD'; fwdKind: 'struct' | 'union' })
  | (Common & { kind: 'FUNC'; type: number; linkage: BtfLinkage })
  | (Common & { kind: 'FUNC_PROTO'; ret: number; params: BtfParam[]; variadic: boolean })
  | (Common & { kind: 'VAR'; type: number; linkage: BtfLinkage })
  | (Common & { kind: 'DATASEC'; size: number; vars: BtfVarSecinfo[] })
  | (Common & { kind: 'FLOAT'; size: number })
  | (Common & { kind: 'DECL_TAG'; type: number; componentIdx: number });

export type BtfTypeOf<K extends BtfType['kind']> = Extract<BtfType, { kind: K }>;

export interface StructMemberLayout {
  /** Byte offset (rounded down for bitfields). */
  offset: number;
  bitOffset: number;
  bitSize: number;
  typeId: number;
}

export interface StructLayout {
  id: number;
  size: number;
  /** Members of anonymous inner structs and unions appear flattened, as C sees them. */
  members: Map<string, StructMemberLayout>;
}
