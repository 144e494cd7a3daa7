/**
 * Patterns a person writes, matched against names a trace holds (points,
 * namespaces): in time linear in the name, whatever the pattern and however
 * hostile the trace. A backtracking match is exponential in the worst case:
 * `^(a+)+$` against a 31-character name, or `*` turned into `.*` fifteen
 * times, runs for minutes.
 */
import v8 from 'node:v8';

/** What a pattern is asked: does it match this whole name (globs) or find itself in it (regexes, unanchored)? */
export interface NameTest {
  test(name: string): boolean;
}

/**
 * A glob of literal text and `*` (any run of characters), matched without a
 * RegExp: the first piece starts the name, the last ends it, and each piece
 * between is found at its leftmost place after the one before — leftmost
 * leaves the most room for the rest, so one pass decides. Runs of `*` are
 * one. (npm's glob matchers compile to a backtracking RegExp and give `/`
 * a meaning point names do not have.)
 */
export function globTest(pattern: string): NameTest {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return { test: (name) => name === pattern };
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((p) => p !== '');
  return {
    test(name) {
      const end = name.length - last.length;
      if (end < first.length || !name.startsWith(first) || !name.endsWith(last)) return false;
      let at = first.length;
      for (const piece of middle) {
        const found = name.indexOf(piece, at);
        if (found < 0 || found + piece.length > end) return false;
        at = found + piece.length;
      }
      return true;
    },
  };
}

/** A regular expression refused: the text says why, to follow `'SOURCE' `. */
export class PatternError extends Error {
  override name = 'PatternError';
}

/** What V8's linear engine leaves out, for the person whose pattern it refused. */
export const NOT_LINEAR =
  'cannot be matched in time linear in the name (backreferences, lookahead and lookbehind, and counts over 16 such as a{17} or (a{4}){5} are not supported)';

/**
 * V8's linear-time engine (RE2's automaton, the RegExp `l` flag) takes the
 * JavaScript syntax people already write for --filter-func and refuses at
 * compile time what it cannot run in linear time. It sits behind a V8 flag:
 * set here the first time a pattern is compiled, unless `node` was started
 * with it. (The npm `re2` binding needs a native build; `re2js` would be a
 * second dialect to document and a dependency the bundle carries into every
 * start.)
 */
function linearFlag(): string {
  try {
    new RegExp('', 'l');
  } catch {
    v8.setFlagsFromString('--enable-experimental-regexp-engine');
  }
  return 'l';
}

/**
 * `source` compiled for the linear engine; `anchored` matches whole names.
 * Throws PatternError when it is not a regular expression, or not one that
 * runs in linear time.
 */
export function linearRegExp(source: string, anchored = false): RegExp {
  const text = anchored ? `^(?:${source})$` : source;
  try {
    new RegExp(text);
  } catch (e) {
    throw new PatternError(`is not a regular expression: ${(e as Error).message}`);
  }
  try {
    return new RegExp(text, linearFlag());
  } catch {
    throw new PatternError(NOT_LINEAR);
  }
}
