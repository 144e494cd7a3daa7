/**
 * The kernel's capabilities are worked out in one place: only the capability
 * model (src/kernel/caps.ts) runs the trials, and only the trials build
 * programs from instructions to try the kernel with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { root } from '../helpers/fixtures.js';

const SRC = new URL('src/', root).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []);
}

const users = (pattern: RegExp) => sources(SRC).filter((f) => pattern.test(readFileSync(f, 'utf8'))).map((f) => relative(SRC, f)).sort();

test('only the capability model runs the trials, and only the trials load programs built from instructions', () => {
  assert.deepEqual(users(/from '\.\/trials\.js'|from '\.\.\/kernel\/trials\.js'/), ['kernel/caps.ts']);
  assert.deepEqual(users(/\bProgram\.load\(/), ['kernel/trials.ts']);
  // The old ways: a feature probe in the loader, a guess by release, the mechanisms tried beside the model.
  assert.deepEqual(users(/probeFeature|directLoadsLikely|probeMechanisms|kernelFeatures\(btf/), []);
});
