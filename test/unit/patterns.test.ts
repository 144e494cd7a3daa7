/**
 * Patterns people write, against names a hostile trace may hold: globs of
 * expectations, --var-netns / var_netns and --filter-func. Each answers in
 * time linear in the name, or is refused in one line before any is read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../src/cli/trace-config.js';
import { UsageError, parseRegex } from '../../src/cli/values.js';
import type { TraceEvent } from '../../src/output/event.js';
import { evaluate } from '../../src/regress/assert.js';
import { parseExpectations, parsePointPattern } from '../../src/regress/expect.js';
import type { Journey } from '../../src/regress/journeys.js';
import { globTest } from '../../src/regress/patterns.js';
import { compileSelection } from '../../src/cli/show-select.js';
import { Placeholders } from '../../src/regress/vars.js';

const seconds = <T>(f: () => T) => {
  const t0 = performance.now();
  const result = f();
  return { result, seconds: (performance.now() - t0) / 1000 };
};

/** What `*` meant as `.*` in an anchored RegExp: the reference for short names. */
const asRegExp = (glob: string) => new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

test('globs: * is any run of characters, the rest is literal, the whole name must match', () => {
  const names = ['', 'a', 'ab', 'ba', 'aba', 'abab', 'tc:ingress', 'nf:ipv4:local_in', 'nf:ipv6:local_in', 'a.b', 'a+b', '(x)'];
  const globs = ['', '*', '**', 'a', 'a*', '*a', 'a*b', 'a**b', '*ab*', 'ab*ab', 'a*a*a', 'nf:*:local_in', 'nf:*', '*:local_*',
    'tc:*', 'a.b', 'a+b', '(x)', '*.*', 'b*a*b*'];
  for (const g of globs) {
    for (const n of names) assert.equal(globTest(g).test(n), asRegExp(g).test(n), `'${g}' on '${n}'`);
  }
  const p = parsePointPattern('nf:*:local_in@b/veth-b');
  assert.deepEqual([p.point.test('nf:ipv4:local_in'), p.netns, p.iface], [true, 'b', 'veth-b']);
});

test('a glob of 14 stars and a Z against a long point name: answered at once, not by backtracking', () => {
  const expectations = parseExpectations('e.yaml', 'expect:\n  - name: starry\n    passes: ["**************Z"]\n');
  const name = `net_dev_queue_${'x'.repeat(200)}`;
  const journey: Journey = {
    time: '2026-12-01T00:00:00.000000001Z', first: null, last: null, flags: '', ctOrig: null,
    hops: [{ at: name, netns: 'a', iface: 'veth-a' }], end: { how: 'ended' },
  };
  const r = seconds(() => evaluate(expectations.expect[0]!, [journey]));
  assert.equal(r.result.ok, false);
  assert.ok(r.seconds < 1, `${r.seconds.toFixed(1)} s`);
  assert.equal(parsePointPattern('**************Z').point.test(`${name}Z`), true);
});

test('--var-netns ^(a+)+$ against a 31-character namespace name: answered at once', () => {
  const hostile = `${'a'.repeat(30)}!`;
  const names = new Placeholders({ addresses: [], ephemeralPorts: false, netns: parseRegex('--var-netns', '^(a+)+$') });
  const r = seconds(() => names.netns(hostile));
  assert.equal(r.result, hostile);
  assert.ok(r.seconds < 1, `${r.seconds.toFixed(1)} s`);
  assert.equal(names.netns('aaaa'), '$n1');
});

test('--filter-func (a+)+$ against a long recorded point name: answered at once', () => {
  const func = buildConfig({ filterFunc: '(a+)+$' }, []).attach.filterFunc!;
  const selection = compileSelection({ expression: '', netns: [], pods: [], ifname: null, mark: null, func });
  const r = seconds(() => selection({ func: `${'a'.repeat(40)}!` } as TraceEvent));
  assert.equal(r.result, false);
  assert.ok(r.seconds < 1, `${r.seconds.toFixed(1)} s`);
  assert.equal(selection({ func: 'aaa' } as TraceEvent), true);
});

test('what cannot run in linear time is refused in one line naming the flag or the file and line', () => {
  for (const [text, why] of [
    ['(a)\\1', /cannot be matched in time linear in the name/],
    ['a(?=b)', /lookahead and lookbehind/],
    ['x{100}', /counts over 16/],
    ['(', /is not a regular expression: Invalid regular expression/],
  ] as const) {
    assert.throws(() => parseRegex('--var-netns', text), (e: unknown) =>
      e instanceof UsageError && e.message.startsWith(`--var-netns: '${text}' `) && why.test(e.message) && !e.message.includes('\n'));
  }
  assert.throws(() => parseExpectations('e.yaml', 'var_netns: "(a)\\\\1"\nexpect:\n  - name: x\n'),
    /: e\.yaml:1: var_netns: '\(a\)\\1' cannot be matched in time linear in the name/);
  // Nested quantifiers are linear here: accepted.
  assert.equal(parseExpectations('e.yaml', 'var_netns: "^(a+)+$"\nexpect:\n  - name: x\n').varNetns, '^(a+)+$');
});
