/**
 * The layers of src/, held against every import of every file: a file
 * imports only from its own layer or the ones below it, the loader (bpf/)
 * and the lab (but for the loader) import nothing else of pktpath, and no files import each other
 * in a circle. docs/ARCHITECTURE.md describes the same order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { root } from '../helpers/fixtures.js';

/** Top to bottom: each layer may import the ones after it. */
export const LAYERS = ['cli', 'plan', 'trace', 'regress', 'output', 'filter', 'decode', 'kernel', 'bpf'] as const;
/**
 * Folders that import nothing else of pktpath: the loader could be published
 * alone; the lab serves the demo and tests, and may use the loader (it loads
 * other programs the way a CNI agent does).
 */
const STANDALONE = new Set(['bpf', 'lab']);
const STANDALONE_MAY_USE: Readonly<Record<string, string>> = { lab: 'bpf' };

const SRC = new URL('src/', root).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []);
}

/** Every module a file names: static imports and re-exports (type-only ones too), and dynamic imports. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of code.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of code.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

interface Edge {
  from: string;
  to: string;
}

/** The imports between files of src/, as paths relative to it (`cli/main.ts`). */
function graph(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sources(SRC)) {
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      edges.push({ from: relative(SRC, file), to: relative(SRC, target) });
    }
  }
  return edges;
}

const layerOf = (path: string) => path.split('/')[0]!;

test('the import reader sees static, type-only, re-exported and dynamic imports, not comments', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b/b.js';",
    "import {\n  c,\n  d,\n} from './c.js';",
    "export { e } from './e.js';",
    "export type * from './f.js';",
    "const g = await import('./g.js');",
    "import './side.js';",
    "// import { no } from './comment.js';",
    "/* import { no } from './block.js'; */",
  ].join('\n');
  assert.deepEqual(importsOf(text).sort(), ['../b/b.js', './a.js', './c.js', './e.js', './f.js', './g.js', './side.js']);
});

test('every folder of src/ has its place', () => {
  const folders = new Set(sources(SRC).map((f) => layerOf(relative(SRC, f))));
  for (const f of folders) {
    assert.ok((LAYERS as readonly string[]).includes(f) || STANDALONE.has(f), `src/${f}/ is in no layer: place it in LAYERS`);
  }
});

test('imports only point down the layers, and the loader and the lab (but for the loader) import nothing else of pktpath', () => {
  const rank = (layer: string) => (LAYERS as readonly string[]).indexOf(layer);
  const wrong: string[] = [];
  for (const { from, to } of graph()) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a === b) continue;
    if (STANDALONE.has(a)) {
      if (STANDALONE_MAY_USE[a] !== b) wrong.push(`${from} → ${to}: src/${a}/ imports nothing else of pktpath`);
    }
    else if (rank(b) >= 0 && rank(b) < rank(a)) wrong.push(`${from} → ${to}: ${b} is above ${a}`);
  }
  assert.deepEqual(wrong, []);
});

test('no import circles between files', () => {
  const next = new Map<string, string[]>();
  for (const { from, to } of graph()) next.set(from, [...(next.get(from) ?? []), to]);
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].join(' → '));
      return;
    }
    state.set(file, 'open');
    for (const to of next.get(file) ?? []) visit(to, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of next.keys()) visit(file, []);
  assert.deepEqual(circles, []);
});

test('docs/ARCHITECTURE.md names the layers in this order', () => {
  const doc = readFileSync(new URL('docs/ARCHITECTURE.md', root), 'utf8');
  // The layer table: rows that start with a layer's folder, e.g. "| `cli/` |".
  const rows = [...doc.matchAll(/^\|\s*`src\/(\w+)\/`/gm)].map((m) => m[1]!);
  assert.deepEqual(rows.filter((r) => !STANDALONE.has(r) || r === 'bpf'), [...LAYERS]);
});

test('files found from a module\'s own location climb out of its folder first, so that the bundle finds them too', () => {
  // scripts/build.sh bundles the modules into dist/src/bundle/, one folder deep like each of them:
  // `../lab/peer.js` means the same from both places, `./peer.js` does not.
  const sameFolder: string[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url/g)) {
      if (!m[1]!.startsWith('../')) sameFolder.push(`${relative(SRC, file)}: ${m[1]}`);
    }
    for (const m of text.matchAll(/path\.join\(\s*HERE\s*,\s*['"]([^'"]+)['"]/g)) {
      if (!m[1]!.startsWith('../')) sameFolder.push(`${relative(SRC, file)}: ${m[1]}`);
    }
  }
  assert.deepEqual(sameFolder, []);
});

test('koffi is imported only by the native bindings (src/bpf/native/): every other module gets numbers, Buffers and strings', () => {
  const native = join(SRC, 'bpf', 'native') + '/';
  const users = sources(SRC).filter((f) => !f.startsWith(native) && importsOf(readFileSync(f, 'utf8')).includes('koffi'));
  assert.deepEqual(users.map((f) => relative(SRC, f)), []);
  // The rule is held against something: the bindings do import it.
  assert.ok(sources(native).some((f) => importsOf(readFileSync(f, 'utf8')).includes('koffi')));
});
