/** The stack section in text: one frame a line under its event (JSON carries it as the `stack` array). */
import { escapeText } from './escape.js';

/** Indent of stack frame lines under their event. */
export const STACK_INDENT = '    ';

/** The frames, each on a line of its own after a newline, indented under the line they follow; escaped (a recorded trace's symbols are any strings). */
export function stackLines(frames: readonly string[], indent = ''): string {
  let s = '';
  for (const frame of frames) s += '\n' + indent + STACK_INDENT + escapeText(frame);
  return s;
}
