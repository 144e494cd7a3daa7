/** Profiles: YAML files and built-ins become command-line options; every problem names the file and line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram, traceOptions, withProfiles } from '../../src/cli/main.js';
import { didYouMean } from '../../src/filter/did-you-mean.js';
import { BUILT_IN_PROFILES, expandProfiles, loadProfile, parseProfile, profileArgs } from '../../src/cli/profiles.js';

const program = buildProgram(() => {});
const known = traceOptions(program);

test('the built-in profiles name options pktpath has, with values where they take one', () => {
  for (const p of BUILT_IN_PROFILES) {
    for (const [name, value] of p.options) {
      const spec = known.get(name);
      assert.ok(spec, `${p.name}: --${name}`);
      assert.equal(spec.takesValue, value !== true, `${p.name}: --${name}`);
    }
  }
  assert.deepEqual(BUILT_IN_PROFILES.map((p) => p.name), ['drops', 'nat', 'pwru', 'ifdump']);
});

test('a profile file: description and options, flags and values', () => {
  const p = parseProfile('mine', 'mine.yaml', [
    'description: my drops',
    'options:',
    '  filter-func: kfree_skb',
    '  output-stack: true',
    '  output-meta: false',
    '  --output-limit-lines: 100',
  ].join('\n'), known);
  assert.equal(p.description, 'my drops');
  assert.deepEqual(profileArgs(p), ['--filter-func', 'kfree_skb', '--output-stack', '--output-limit-lines', '100']);
});

test('broken profiles: one line naming the file and the line', () => {
  const bad: Array<[string, RegExp]> = [
    ['options:\n  output-tuple: true\n  output-tuplee: true\n', /^profile f\.yaml:3: unknown option 'output-tuplee' \(did you mean 'output-tuple'\?\)$/],
    ['description: x\noptions:\n  filter-func: true\n', /^profile f\.yaml:3: filter-func: needs a value/],
    ['options:\n  output-stack: yes please\n', /^profile f\.yaml:2: output-stack: a flag, true or false$/],
    ['options:\n  profile: drops\n', /^profile f\.yaml:2: a profile cannot name another profile$/],
    ['colour: red\n', /^profile f\.yaml:1: unknown key 'colour'/],
    ['- a\n- b\n', /^profile f\.yaml:1: a profile is a mapping/],
    ['options:\n  output-tuple: true\n   bad: [\n', /^profile f\.yaml:\d+: /],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseProfile('f', 'f.yaml', text, known), (e: Error) => re.test(e.message) && !e.message.includes('\n'), text);
  }
});

test('profiles go before the user\'s options, so the command line wins; nothing after -- is touched', () => {
  const drops = BUILT_IN_PROFILES[0]!;
  const argv = ['node', 'pktpath', '--output-meta', '--profile', 'drops', '--filter-func', 'tc:', '--', 'x', '--profile', 'y'];
  assert.deepEqual(expandProfiles(argv, 2, () => drops), [
    'node', 'pktpath', ...profileArgs(drops), '--output-meta', '--filter-func', 'tc:', '--', 'x', '--profile', 'y',
  ]);
  assert.deepEqual(expandProfiles(['n', 'p', 'record', '--profile=drops'], 3, () => drops), ['n', 'p', 'record', ...profileArgs(drops)]);
  assert.throws(() => expandProfiles(['n', 'p', '--profile'], 2, () => drops), /--profile: name a profile/);
});

test('user profiles shadow built-ins; unknown names suggest the closest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-profiles-'));
  try {
    writeFileSync(join(dir, 'drops.yaml'), 'description: mine\noptions:\n  output-tuple: true\n');
    writeFileSync(join(dir, 'broken.yaml'), 'options:\n  nope: 1\n');
    assert.equal(loadProfile('drops', known, dir).description, 'mine');
    assert.equal(loadProfile('nat', known, dir).source, 'built-in');
    assert.throws(() => loadProfile('broken', known, dir), (e: Error) => e.message === `profile ${join(dir, 'broken.yaml')}:2: unknown option 'nope'`);
    assert.throws(() => loadProfile('natt', known, dir), /no profile 'natt' \(did you mean 'nat'\?\)/);
    assert.throws(() => loadProfile(join(dir, 'none.yaml'), known, dir), /cannot read: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('withProfiles: the trace, list and record take profiles; other commands are left alone', () => {
  const out = withProfiles(program, ['node', 'pktpath', 'list', '--profile', 'nat']);
  assert.deepEqual(out, ['node', 'pktpath', 'list', '--output-ct', '--filter-track-skb', '--output-tuple']);
  assert.deepEqual(withProfiles(program, ['node', 'pktpath', 'doctor']), ['node', 'pktpath', 'doctor']);
  assert.equal(didYouMean('output-stak', known.keys()), 'output-stack');
  assert.equal(didYouMean('zzzzzz', known.keys()), null);
});

test('a profile file may not give options that write, replace or delete files: the command line may; built-ins may', () => {
  const record = traceOptions(program.commands.find((c) => c.name() === 'record')!);
  const refused: Array<[string, string]> = [
    ['output-file: /etc/passwd', 'output-file writes files'],
    ['output-pcap: x.pcapng', 'output-pcap writes files'],
    ['output-json-file: x.jsonl', 'output-json-file writes files'],
    ['ready-file: /etc/nologin', 'ready-file creates and removes a file'],
    ['force: true', 'force replaces files'],
    ['force: false', 'force replaces files'],
    ['--force: true', 'force replaces files'],
    ['output-file-max-size: 4K', 'output-file-max-size renames and removes files'],
    ['output-file-max-backups: 1', 'output-file-max-backups removes files'],
    ['output-file-compress: true', 'output-file-compress rewrites files'],
    ['output-file-max-age: 1', 'output-file-max-age deletes files'],
    ['out: /etc/passwd', 'out writes files'],
  ];
  for (const [line, what] of refused) {
    assert.throws(() => parseProfile('f', 'f.yaml', `description: x\noptions:\n  output-tuple: true\n  ${line}\n`, record),
      (e: Error) => e.message === `profile f.yaml:4: ${what}: give it on the command line, not in a profile`, line);
  }
  // The built-in ifdump writes its pcapng: pktpath's own profiles are trusted.
  assert.deepEqual(profileArgs(BUILT_IN_PROFILES.find((p) => p.name === 'ifdump')!).slice(2, 4), ['--output-pcap', 'pktpath-ifdump.pcapng']);
});

test('aliases in a profile stand for the values they name, one at a time', () => {
  const p = parseProfile('f', 'f.yaml', [
    'description: &d DNS both ways',
    'options:',
    '  filter-dst-port: &port 53',
    '  filter-src-port: *port',
    '  output-tuple: &yes true',
    '  output-meta: *yes',
  ].join('\n'), known);
  assert.equal(p.description, 'DNS both ways');
  assert.deepEqual(profileArgs(p), ['--filter-dst-port', '53', '--filter-src-port', '53', '--output-tuple', '--output-meta']);
});

test('profile files: regular ones only, a few lines at most', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-profiles-'));
  try {
    symlinkSync('/dev/zero', join(dir, 'zero.yaml'));
    writeFileSync(join(dir, 'big.yaml'), `description: x\n${'#'.repeat(2 ** 20)}\n`);
    assert.throws(() => loadProfile('zero', known, dir), (e: Error) => e.message === `profile ${join(dir, 'zero.yaml')}: not a regular file (a character device)`);
    assert.throws(() => loadProfile('/dev/zero', known, dir), (e: Error) => e.message === 'profile /dev/zero: not a regular file (a character device)');
    assert.throws(() => loadProfile(join(dir, 'big.yaml'), known, dir), /big\.yaml: larger than 1 MiB; a profile is a few lines$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
