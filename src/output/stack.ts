/** The stack section in text: one frame a line under its event (JSON carries it as the `stack` array). */
import { escapeText } from './escape.js';

/** Indent of stack frame lines under their event. */
export const STACK_INDENT = '    ';

/**
 * Frames escaped (a recorded trace's symbols are any strings), by their
 * array: a live trace has one array per stack id (src/trace/stacks.ts), so a
 * stack is escaped once, not at every record that shows it.
 */
const escapedFrames = new WeakMap<readonly string[], readonly string[]>();

function escaped(frames: readonly string[]): readonly string[] {
  let e = escapedFrames.get(frames);
  if (e === undefined) {
    const copy = frames.map(escapeText);
    e = copy.every((f, i) => f === frames[i]) ? frames : copy;
    escapedFrames.set(frames, e);
  }
  return e;
}

/** The frames, each on a line of its own after a newline, indented under the line they follow. */
export function stackLines(frames: readonly string[], indent = ''): string {
  let s = '';
  for (const frame of escaped(frames)) s += '\n' + indent + STACK_INDENT + frame;
  return s;
}
