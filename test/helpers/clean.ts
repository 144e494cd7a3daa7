/** What must never reach a terminal from pktpath: a check on the bytes it wrote. */
import assert from 'node:assert/strict';
import { isControl } from '../../src/output/escape.js';

/** No C0 control but the newline, no DEL, no C1, no bidi control or line separator (src/output/escape.ts). */
export function assertClean(out: Buffer | string, what: string): void {
  const text = Buffer.isBuffer(out) ? out.toString('utf8') : out;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) continue;
    if (isControl(c)) {
      assert.fail(`${what}: U+${c.toString(16).padStart(4, '0')} at ${i}: ${JSON.stringify(text.slice(Math.max(0, i - 40), i + 40))}`);
    }
  }
}
