/**
 * What normalize and diff hold of a trace is bounded: a normalised trace
 * whose paths pass the bound is refused at the line that passes it, in one
 * line naming the file, the line and the bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELD_LIMIT_MIB, pathBytes } from '../../src/regress/held.js';
import { normalizeFile } from '../../src/regress/normalize.js';
import { TraceFileError } from '../../src/regress/records.js';

const FLOW = 'udp 192.0.2.1:$p1 > 192.0.2.2:5201';

/** `lines` normalised paths, each through a point with a name of `nameLength` characters. */
async function writeNormalized(file: string, lines: number, nameLength: number): Promise<number> {
  const out = createWriteStream(file);
  const write = (line: string) => (out.write(line + '\n') ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  await write(JSON.stringify({ v: 1, type: 'normalized', kernel: null, command: null, vars: [], packets: lines, lost: 0 }));
  let bytes = 0;
  for (let i = 0; i < lines; i++) {
    const line = JSON.stringify({
      v: 1, type: 'packet', flow: FLOW, dir: '>', flags: '', tuple: FLOW.slice(4),
      hops: [{ at: `p${String(i).padStart(8, '0')}${'x'.repeat(nameLength)}`, netns: 'a', iface: 'veth-a' }], end: { how: 'ended' },
    });
    bytes += line.length + 1;
    await write(line);
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
  return bytes;
}

test('pathBytes counts about the bytes of the normalised JSON line', () => {
  const hops = [{ at: 'nf:ipv4:local_in', netns: 'b', iface: 'veth-b', ct: 'NEW' }, { at: 'net_dev_queue', netns: 'a', iface: 'veth-a' }];
  const line = JSON.stringify({ v: 1, type: 'packet', flow: FLOW, dir: '>', flags: '', tuple: FLOW.slice(4), hops, end: { how: 'ended' } });
  const counted = pathBytes(hops, { how: 'ended' }, FLOW, FLOW.slice(4));
  assert.ok(Math.abs(counted - line.length) < line.length * 0.2, `${counted} for ${line.length}`);
  // Fields of the wrong type (a hand-made trace) count nothing rather than NaN.
  assert.ok(Number.isFinite(pathBytes([{ at: 'x', netns: 'a', iface: undefined as unknown as string }], { how: 'ended', reason: 7 as unknown as string })));
});

test(`a normalised trace holding more than ${HELD_LIMIT_MIB} MiB of paths: refused at the line past the bound`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-held-'));
  const file = join(dir, 'big.norm.jsonl');
  try {
    const lineLength = 16 * 1024;
    const lines = Math.ceil((HELD_LIMIT_MIB * 2 ** 20) / lineLength) + 200;
    await writeNormalized(file, lines, lineLength - 160);
    await assert.rejects(normalizeFile(file, { vars: { addresses: [], ephemeralPorts: true, netns: null }, keepNeighbour: false }, []), (e: unknown) => {
      assert.ok(e instanceof TraceFileError);
      const m = /^(.+):(\d+): its distinct paths pass (\d+) MiB \(as normalised JSON\), the most pktpath holds of a trace \(docs\/REGRESS\.md\)$/.exec(e.message);
      assert.ok(m, e.message);
      assert.equal(m[1], file);
      assert.equal(Number(m[3]), HELD_LIMIT_MIB);
      // Stopped where the bound was passed, not at the end of the file.
      assert.ok(Number(m[2]) < lines - 100 && Number(m[2]) > lines - 400, m[2]);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
