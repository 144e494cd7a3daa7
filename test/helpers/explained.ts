/**
 * Explain's scenarios: a command recorded by pktpath (in a private network
 * namespace, as every test's tracer runs), then the trace explained as text
 * and as JSON records, each record checked against the schema.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { run } from '../../src/lab/lab.js';
import { pktpathPrivately } from './tracer.js';
import { validateJsonLine } from './schema.js';

export const pktpath = (args: string[], timeoutMs = 60_000) => run(...pktpathPrivately(args), timeoutMs);

/** Records `shell` into DIR/NAME.jsonl with pktpath's `args`, then explains it: explain's text and its records. */
export async function recordAndExplain(dir: string, name: string, args: string[], shell: string): Promise<{ text: string; json: Array<Record<string, unknown>> }> {
  const out = join(dir, `${name}.jsonl`);
  const r = await pktpath(['record', '--out', out, ...args, '--', 'sh', '-c', shell]);
  assert.equal(r.code, 0, r.stderr);
  const text = await pktpath(['explain', out]);
  assert.equal(text.code, 0, text.stderr);
  const json = await pktpath(['explain', '--json', out]);
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout.trim().split('\n').filter(Boolean);
  for (const l of lines) assert.equal(validateJsonLine(l), null, l);
  return { text: text.stdout, json: lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export const firstLine = (s: string) => s.split('\n')[0];
export const inNs = (ns: string, cmd: string) => `ip netns exec ${ns} ${cmd}`;
