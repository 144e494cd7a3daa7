/**
 * Strings from outside pktpath, made safe to print and unambiguous to read.
 *
 * Names in the kernel are anyone's bytes — a process sets its comm, a device
 * or a namespace's file under /run/netns is named by whoever made it, an nft
 * rule carries its author's comment — and so is everything in a trace file
 * from a CI artifact. Printed raw, an ESC or a C1 CSI (0x9b) would drive the
 * terminal showing pktpath's output (clear it, set its title, hide what
 * follows), a newline or a carriage return would forge or overwrite a line,
 * and a bidi override would show a line in another order than it has.
 *
 * escapeText writes those as escapes a person can read back: `\x1b` for C0
 * controls, DEL and C1 controls; `\u202e` for the bidi controls (embeddings,
 * overrides, isolates and marks), the line and paragraph separators, and
 * lone surrogates (a JSON file can hold them; UTF-8 cannot, and would print
 * U+FFFD in their place). Tabs too: a tab in a name would move the columns.
 * A backslash is doubled where it could be read as the start of an escape,
 * so the text reads back to exactly the string — and elsewhere left alone,
 * so a regular expression quoted in a message reads as it was typed.
 * Every text output writes a string from an event or a file through it once,
 * where the string enters its line or its cache (never twice: escapes are
 * themselves text a second pass would escape again).
 *
 * JSON escapes C0 controls itself, but JSON.stringify leaves DEL, C1 and the
 * bidi controls raw: jsonText writes those as `\u0085` too, the same JSON
 * value, so that JSON lines are as safe on a terminal as text.
 */

const HEX = '0123456789abcdef';

/** Whether the UTF-16 unit `c` is written escaped (surrogates aside: a lone one is, a pair is not). */
export function isControl(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && (c <= 0x9f || isFormatControl(c)));
}

/** The bidi controls (ALM, LRM, RLM, LRE…RLO, LRI…PDI) and U+2028/U+2029 (line and paragraph separators). */
function isFormatControl(c: number): boolean {
  return (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c === 0x200e || c === 0x200f || c === 0x061c;
}

const isSurrogate = (c: number) => c >= 0xd800 && c <= 0xdfff;
const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Whether the unit at `i` is half of a surrogate pair (kept as it is). */
function paired(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return isHigh(c) ? isLow(s.charCodeAt(i + 1)) : isHigh(s.charCodeAt(i - 1));
}

/** Whether the unit at `i` is written escaped. */
function escapedAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return isControl(c) || (isSurrogate(c) && !paired(s, i));
}

function hexEscape(c: number): string {
  if (c < 0x100) return '\\x' + HEX[c >> 4]! + HEX[c & 15]!;
  return '\\u' + HEX[c >> 12]! + HEX[(c >> 8) & 15]! + HEX[(c >> 4) & 15]! + HEX[c & 15]!;
}

/**
 * Whether a backslash before `i` must be doubled: it would otherwise be read
 * with what follows as an escape (`\x`, `\u`, `\\`, an escaped unit), or it
 * ends the string (text may follow it in the line).
 */
function needsDoubling(s: string, i: number): boolean {
  if (i >= s.length) return true;
  const c = s.charCodeAt(i);
  return c === 0x78 || c === 0x75 || c === 0x5c || escapedAt(s, i);
}

/**
 * `s` with its control and bidi characters as `\x1b` / `\u202e` escapes (see
 * above); `s` itself when it has none, which is nearly always: names are
 * checked in one scan of their characters.
 */
export function escapeText(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x5c || (c >= 0x7f && (c <= 0x9f || isSurrogate(c) || isFormatControl(c)))) return escapeFrom(s, i);
  }
  return s;
}

function escapeFrom(s: string, from: number): string {
  let out = s.slice(0, from);
  let kept = from;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string;
    if (c === 0x5c) {
      if (!needsDoubling(s, i + 1)) continue;
      esc = '\\\\';
    } else if (escapedAt(s, i)) {
      esc = hexEscape(c);
    } else {
      continue;
    }
    out += s.slice(kept, i) + esc;
    kept = i + 1;
  }
  return out + s.slice(kept);
}

/** Text of several lines (a struct the kernel printed, a block of details): each line escaped, the newlines kept. */
export function escapeLines(s: string): string {
  return s.includes('\n') ? s.split('\n').map(escapeText).join('\n') : escapeText(s);
}

/**
 * A message for stderr: one line, escaped, but for the indented lines that
 * continue it (a verifier log's tail under a failed load); a newline
 * followed by anything else — in a file name, say — is escaped.
 */
export function escapeMessage(s: string): string {
  return s.includes('\n') ? s.split(/\n(?= )/).map(escapeText).join('\n') : escapeText(s);
}

/** `s` in double quotes, its quotes as `\"`, escaped (an nft rule's text, which may hold anything). */
export function quoteText(s: string): string {
  return '"' + escapeText(s.replaceAll('"', '\\"')) + '"';
}

/** Every string in a plain value (objects, arrays) escaped: data from files, before a text formatter that prints its fields. */
export function escapeStrings<T>(v: T): T {
  if (typeof v === 'string') return escapeText(v) as T;
  if (Array.isArray(v)) return v.map(escapeStrings) as T;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = escapeStrings(x);
    return out as T;
  }
  return v;
}

// What JSON.stringify leaves raw of isControl's characters: DEL, C1, the bidi controls, U+2028/U+2029.
const JSON_RAW = /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

const jsonEscape = (ch: string) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0');

/**
 * JSON.stringify(v), with DEL, C1 and the bidi controls as `\u` escapes:
 * the same JSON value, that a terminal shows as it is. (Outside strings JSON
 * text is ASCII, so every such character is in a string.)
 */
export function jsonText(v: unknown): string {
  return escapeJsonLine(JSON.stringify(v));
}

/** A JSON text (a line read from a file, valid JSON) with the same characters escaped as jsonText escapes. */
export function escapeJsonLine(text: string): string {
  return text.replace(JSON_RAW, jsonEscape);
}
