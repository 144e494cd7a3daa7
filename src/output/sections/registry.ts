/**
 * Every optional event section, in the order JSON records write them. The
 * decoder, the enricher, the text and JSON encoders, the JSON reader, the
 * options and the schema's check go through this list: a section is added
 * here and in its own module (./section.ts says what one holds), and in its C
 * helper (probes/include/sections/) with its call in observe().
 */
import type { SectionDecoders } from '../../decode/event.js';
import { jsonText } from '../escape.js';
import type { Section, SectionContext, SectionOption } from './section.js';
import { dumpSection } from './dump.js';
import { skbMetaSection } from './skb-meta.js';
import { neighSection } from './neigh.js';
import { routeSection } from './route.js';
import { retvalSection } from './retval.js';
import { skbQueueSection } from './skb-queue.js';
import { tunnelSection } from './tunnel.js';
import { wireSection } from './wire.js';
import { bpfmapSection } from './bpfmap.js';
import { xdpMetaSection } from './xdp-meta.js';

export const SECTIONS = [tunnelSection, wireSection, skbMetaSection, xdpMetaSection, dumpSection, skbQueueSection, routeSection, neighSection, retvalSection,
  bpfmapSection] as const;

type Listed = (typeof SECTIONS)[number];
type ValueOf<S> = S extends Section<string, unknown, infer V, string, unknown> ? V : never;
type JsonOf<S> = S extends Section<string, unknown, unknown, string, infer J> ? J : never;

/** The sections' fields of TraceEvent (src/output/event.ts): null (or absent) where an event has none. */
export type SectionFields = { [S in Listed as S['key']]?: ValueOf<S> | null };
/** Their fields of a JSON record: absent where an event has none. */
export type JsonSectionFields = { [S in Listed as S['jsonKey']]?: JsonOf<S> };
export type SectionKey = Listed['key'];

// One list of sections of different types, each used with its own values.
type AnySection = Section<string, any, any, string, any>;
const ALL: readonly AnySection[] = SECTIONS;
const INLINE = ALL.filter((s) => s.text !== undefined);
const BELOW = ALL.filter((s) => s.lines !== undefined);

type Fields = Record<string, unknown>;

/** The decoders by kind, for decodeEvent. */
export const SECTION_DECODERS: SectionDecoders = (() => {
  const byKind: Array<SectionDecoders[number]> = [];
  for (const s of ALL) byKind[s.kind] = { key: s.key, decode: s.decode };
  return byKind;
})();

/** CONFIG.sections for the sections asked for: bit k for kind k. */
export function sectionMask(keys: readonly string[]): number {
  let mask = 0;
  for (const s of ALL) if (keys.includes(s.key)) mask |= 1 << s.kind;
  return mask >>> 0;
}

/** Every section's options, with the section they ask for. */
export function sectionOptions(): Array<SectionOption & { key: string }> {
  return ALL.flatMap((s) => s.options.map((o) => ({ ...o, key: s.key })));
}

/** commander's name of an option's value: `--output-skb-cb` → `outputSkbCb`. */
export function optionName(flags: string): string {
  return flags.split(/[ ,]/)[0]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** An option's value that is wrong, or a section a trace cannot prepare: the option and why. */
export class SectionOptionError extends Error {
  override name = 'SectionOptionError';
}

/** Runs `step` for an option; what it throws (but programming errors) becomes that option's SectionOptionError. */
function forOption<T>(flags: string, step: () => T): T {
  try {
    return step();
  } catch (e) {
    if (!(e instanceof Error) || e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError) throw e;
    throw new SectionOptionError(`${flags.split(' ')[0]}: ${e.message}`);
  }
}

/** The values of the sections' options given, checked, by option name (`outputSkbMetadata`). */
export function sectionValues(opts: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of ALL.flatMap((s) => s.options)) {
    const text = opts[optionName(o.flags)];
    if (o.parse !== undefined && typeof text === 'string') out[optionName(o.flags)] = forOption(o.flags, () => o.parse!(text));
  }
  return out;
}

/** What a live trace's sections need, made from their options' values (compiled, looked up in the kernel). */
export function prepareSections(values: Readonly<Record<string, unknown>>): SectionContext {
  let ctx: SectionContext = { skbMeta: null };
  for (const o of ALL.flatMap((s) => s.options)) {
    const value = values[optionName(o.flags)];
    if (o.prepare !== undefined && value !== undefined) ctx = { ...ctx, ...forOption(o.flags, () => o.prepare!(value)) };
  }
  return ctx;
}

/** The sections the parsed options ask for (any of a section's options given). */
export function askedSections(opts: Readonly<Record<string, unknown>>): SectionKey[] {
  return ALL.filter((s) => s.options.some((o) => {
    const v = opts[optionName(o.flags)];
    return v !== undefined && v !== false;
  })).map((s) => s.key as SectionKey);
}

// The checks every event passes are made once from the list, as code that names
// each field: a load whose key changes from section to section is a megamorphic
// lookup on every event (it cost the JSON encoder a third of its rate). The
// keys are the registry's own identifiers, never input.
const FIELD = /^[A-Za-z_]\w*$/;
for (const s of ALL) if (!FIELD.test(s.key)) throw new Error(`section key ${s.key} is not an identifier`);

function anyOf(list: readonly AnySection[]): (e: object) => boolean {
  return new Function('e', `return ${list.map((s) => `!!e.${s.key}`).join(' || ') || 'false'};`) as (e: object) => boolean;
}

/** Whether the event carries any section; one the line shows on it; one under it. */
export const hasSection = anyOf(ALL);
export const hasInlineSection = anyOf(INLINE);
export const hasSectionLines = anyOf(BELOW);

const enrichAll = new Function('event', 'raw', 'ctx', 'list', ALL.map((s, i) =>
  `{ const r = raw === null ? undefined : raw.${s.key}; event.${s.key} = r === undefined || r === null ? null : list[${i}].enrich(r, ctx, event); }`).join('\n'),
) as (event: object, raw: Readonly<Record<string, unknown>> | null, ctx: SectionContext, list: readonly AnySection[]) => void;

/**
 * Sets every section's field of `event` (null where the record has none):
 * each event gets them all, in one order, so that sinks see one object shape.
 */
export function enrichSections(event: object, raw: Readonly<Record<string, unknown>> | null, ctx: SectionContext): void {
  enrichAll(event, raw, ctx, ALL);
}

/** ` <text>` of each section on the event's line. */
export function sectionText(e: object): string {
  let out = '';
  for (const s of INLINE) {
    const v = (e as Fields)[s.key];
    if (v) out += ' ' + s.text!(v);
  }
  return out;
}

/** The lines under the event's line. */
export function sectionLines(e: object): string {
  let out = '';
  for (const s of BELOW) {
    const v = (e as Fields)[s.key];
    if (v) out += s.lines!(v);
  }
  return out;
}

/** Each section of `e` as its JSON field, in order, into `rec`. */
export function sectionsToJson(e: object, rec: Fields): void {
  for (const s of ALL) {
    const v = (e as Fields)[s.key];
    if (v) rec[s.jsonKey] = s.toJson(v);
  }
}

/** `,"<field>":<JSON>` of each section of `e`, in order (as sectionsToJson writes them). */
export function sectionsJsonText(e: object): string {
  let out = '';
  for (const s of ALL) {
    const v = (e as Fields)[s.key];
    if (v) out += ',"' + s.jsonKey + '":' + jsonText(s.toJson(v));
  }
  return out;
}

/** Each section's JSON field of `rec` back into the event `e`. */
export function sectionsFromJson(rec: object, e: Fields): void {
  for (const s of ALL) {
    const j = (rec as Fields)[s.jsonKey];
    if (j) e[s.key] = s.fromJson(j);
  }
}

/** The sections, for checks: their kinds, C helpers, layouts and schema fragments. */
export function sectionDescriptions(): ReadonlyArray<Pick<AnySection, 'key' | 'kind' | 'header' | 'layout' | 'jsonKey' | 'schema'>> {
  return ALL;
}
