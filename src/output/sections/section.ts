/**
 * An optional event section, whole, in one module: its C layout's mirror
 * (probes/include/sections/<header>, held by test/unit/layout.test.ts), its
 * decoder, what it names, its text, its JSON form and back, its schema
 * fragment (held against schema/event.v1.json) and the options that ask for
 * it. The decoder, the enricher, the text and JSON encoders and the JSON
 * reader go through ./registry.ts, never through a section by name.
 */
import type { MapTypes } from '../../bpf/loaded.js';
import type { CompiledSkbFetch } from '../../filter/skb-expr.js';

/** How a function's return value reads, from its BTF prototype. */
export type ReturnShape =
  | { kind: 'int'; size: number; signed: boolean }
  | { kind: 'bool' }
  | { kind: 'pointer' }
  | { kind: 'enum'; size: number; names: ReadonlyMap<number, string> };

/** What a section's names come from, beyond its record: what the sections' options made (prepare). */
export interface SectionContext {
  /** The fields the skb metadata section holds, in order (and the code that reads them, for the probes). */
  skbMeta: CompiledSkbFetch | null;
  /** The fields the XDP metadata section holds (--output-xdp-metadata), compiled against the xdp_buff; absent where none. */
  xdpMeta?: CompiledSkbFetch | null;
  /** A device's name in a namespace (by inode), for sections that name devices beside the event's own; absent where none are known (show). */
  ifname?: (netns: number, ifindex: number) => string;
  /** How a traced function's return value reads (--output-retval); absent where unknown (show). */
  returns?: (func: string) => ReturnShape | null;
  /** A BPF map described by id (--output-bpfmap); absent: the running kernel's, looked up once each. */
  maps?: (id: number) => MapTypes | null;
}

/** What a section's enrich may read of the event it is part of (set before its sections). */
export interface SectionEventContext {
  netns: number;
  func: string;
}

/** A command-line option that asks for a section. */
export interface SectionOption {
  /** As commander takes them: `--output-skb-queue`, `--output-skb-cb`. */
  flags: string;
  description: string;
  /** Only where a probe fills the section (a live trace); else `show` takes it too. */
  live: boolean;
  /** Its value, checked (throws an Error saying what is wrong with it); absent for a flag. */
  parse?(text: string): unknown;
  /** What a live trace makes of the parsed value before attaching (throws an Error saying why it cannot). */
  prepare?(value: unknown): Partial<SectionContext>;
}

/**
 * `Key` is the section's field on TraceEvent, `JsonKey` its field in a JSON
 * record; `Raw` what the ring holds, `Value` what sinks are given, `Json` its
 * JSON form.
 */
export interface Section<Key extends string, Raw, Value, JsonKey extends string, Json> {
  key: Key;
  /** The SECTION_* of its C helper (from 8 up: event.h's own kinds are below). */
  kind: number;
  /** Its C helper, under probes/include/sections/. */
  header: string;
  /** struct <name> of the helper, offsets and size. */
  layout: { struct: string; size: number; fields: Readonly<Record<string, number>> };
  /** The section at `at` (behind its head); null when the record's section says nothing (the probe found nothing to report). */
  decode(view: DataView, bytes: Uint8Array, at: number): Raw | null;
  /** The names a user reads; null to leave the section out. */
  enrich(raw: Raw, ctx: SectionContext, event?: SectionEventContext): Value | null;
  /** Text on the event's line, escaped (after the tuple's change, before conntrack). */
  text?(v: Value): string;
  /** Lines under the event's line (each starting with a newline), escaped. */
  lines?(v: Value): string;
  jsonKey: JsonKey;
  toJson(v: Value): Json;
  /** The inverse of toJson, for `pktpath show` and the regress tools. */
  fromJson(j: Json): Value;
  /** Its property in schema/event.v1.json's event. */
  schema: Readonly<Record<string, unknown>>;
  options: readonly SectionOption[];
}

/** A section, its types inferred from what it is made of. */
export function section<Key extends string, Raw, Value, JsonKey extends string, Json>(
  s: Section<Key, Raw, Value, JsonKey, Json>,
): Section<Key, Raw, Value, JsonKey, Json> {
  return s;
}
