/**
 * The one libpcap front end (src/filter/pcap.ts): the live filter, the
 * tunnels' inner filters and `show`'s filter on recorded events refuse the
 * same expressions with the same one-line errors, under the same bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter } from '../../src/filter/expression.js';
import { FilterError, FilterSyntaxError, FilterTooLarge, MAX_TERMS } from '../../src/filter/pcap.js';
import { compileRecordedFilter } from '../../src/filter/recorded.js';
import { compileInnerFilter } from '../../src/filter/inner-packet.js';

/** Each front end, by the flag it names. */
const FRONT_ENDS: Array<[string, (expression: string) => unknown]> = [
  ['filter', compileFilter],
  ['filter', compileRecordedFilter],
  ['--filter-tunnel-pcap-l3', (e) => compileInnerFilter(null, e)],
  ['--filter-tunnel-pcap-l2', (e) => compileInnerFilter(e, null)],
];

/** The error a compile throws, or null. */
function refusal(compile: (expression: string) => unknown, expression: string): Error | null {
  try {
    compile(expression);
    return null;
  } catch (e) {
    return e as Error;
  }
}

test('a syntax error: one line naming the flag and the expression, and where libpcap points', () => {
  for (const [label, compile] of FRONT_ENDS) {
    const e = refusal(compile, 'udp port no-such-service');
    assert.ok(e instanceof FilterSyntaxError && e instanceof FilterError, `${label}: ${String(e)}`);
    assert.match(e.message, new RegExp(`^${label} 'udp port no-such-service': .*\\(at column 10: 'no-such-service'\\)$`));
    assert.doesNotMatch(e.message, /\n/);
  }
});

test('more terms than libpcap is given: refused before it compiles, by every front end', () => {
  const long = Array.from({ length: MAX_TERMS + 1 }, (_, i) => `port ${i + 1}`).join(' or ');
  for (const [label, compile] of FRONT_ENDS) {
    const started = process.hrtime.bigint();
    const e = refusal(compile, long);
    assert.ok(e instanceof FilterTooLarge, `${label}: ${String(e)}`);
    assert.match(e.message, new RegExp(`^${label}: ${MAX_TERMS + 1} terms; pktpath compiles at most ${MAX_TERMS}`));
    // Refused from the words alone (a safety net, not a timing goal).
    assert.ok(process.hrtime.bigint() - started < 1_000_000_000n);
  }
});

test('too large for a probe\'s region: the same error, naming the region\'s room', () => {
  const hosts = Array.from({ length: 5 }, (_, i) => `host 2001:db8::${i + 1}`).join(' or ');
  const e = refusal((x) => compileInnerFilter(null, x), hosts);
  assert.ok(e instanceof FilterTooLarge, String(e));
  assert.match(e.message, /^--filter-tunnel-pcap-l3: it needs \d+ eBPF instructions; the probes have room for 512: narrow it/);
  // The live filter's region is larger: the same expression fits there.
  assert.equal(refusal(compileFilter, hosts), null);
});

test('an expression that needs a link-layer header: L3 matches nothing, for the live filter and show alike', () => {
  const live = compileFilter('arp');
  assert.deepEqual(live.l3.cbpf, [{ code: 0x06, jt: 0, jf: 0, k: 0 }]);
  assert.match(live.notes[0]!, /^filter 'arp' needs a link-layer header/);
  assert.equal(compileRecordedFilter('arp').l3, null);
});
