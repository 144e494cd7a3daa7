import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRunTime, formatSummary, groupDigits, summaryLine, type TraceSummary } from '../../src/output/summary.js';

const ESC = /\u001b\[/;

function summary(over: Partial<TraceSummary> = {}): TraceSummary {
  return {
    events: 1234567,
    lost: 12,
    attached: 57,
    attachMs: 812.4,
    durationMs: 12_345,
    stoppedBy: 'signal',
    perPoint: new Map([
      ['tc:ingress', 20],
      ['netif_receive_skb', 1234000],
      ['kfree_skb', 7],
      ['consume_skb', 20],
      ['nf:ipv4:local_in', 540],
    ]),
    drops: new Map([['NO_SOCKET', 2], ['NETFILTER_DROP', 5]]),
    ...over,
  };
}

/** The rows of the table whose header cell is `head`, as [name, value] pairs. */
function rowsUnder(text: string, head: string): Array<[string, string]> {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.includes(head));
  assert.ok(start >= 0, `a table headed ${head}`);
  const rows: Array<[string, string]> = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('│')) break;
    const cells = l.split('│').slice(1, -1).map((c) => c.trim());
    rows.push([cells[0]!, cells[1]!]);
  }
  return rows;
}

test('no escape codes without colour; the counts are there', () => {
  const text = formatSummary(summary(), { color: false });
  assert.doesNotMatch(text, ESC);
  assert.match(text, /│ events +│ +1,234,567 │/);
  assert.match(text, /│ lost records +│ +12 │/);
  assert.match(text, /│ dropped packets +│ +7 │/);
  assert.match(text, /│ run time +│ +12\.3 s │/);
  assert.match(text, /│ points attached +│ +57 │/);
  assert.match(text, /│ attach time +│ +812 ms │/);
  assert.match(text, /│ stopped by +│ +signal │/);
  assert.ok(!text.endsWith('\n'));
});

test('with --output-nft: nftables\' trace events read and lost, in the line and the table', () => {
  const s = summary({ nft: { read: 1200, lost: 3456 } });
  assert.match(summaryLine(s), /; nft trace events: 1200 read, 3456 lost$/);
  assert.match(formatSummary(s, { color: false }), /│ lost nft trace events +│ +3,456 │/);
  assert.doesNotMatch(summaryLine(summary()), /nft/);
  assert.doesNotMatch(formatSummary(summary(), { color: false }), /nft/);
});

test('points by count, most first, ties by name; drops by count', () => {
  const text = formatSummary(summary(), { color: false });
  assert.deepEqual(rowsUnder(text, 'observation point'), [
    ['netif_receive_skb', '1,234,000'],
    ['nf:ipv4:local_in', '540'],
    ['consume_skb', '20'],
    ['tc:ingress', '20'],
    ['kfree_skb', '7'],
  ]);
  assert.deepEqual(rowsUnder(text, 'drop reason'), [['NETFILTER_DROP', '5'], ['NO_SOCKET', '2']]);
});

test('long lists end with one row adding up the rest', () => {
  const perPoint = new Map(Array.from({ length: 10 }, (_, i): [string, number] => [`point_${i}`, 100 - i]));
  const text = formatSummary(summary({ perPoint }), { color: false, maxRows: 4 });
  assert.deepEqual(rowsUnder(text, 'observation point'), [
    ['point_0', '100'], ['point_1', '99'], ['point_2', '98'], ['… 7 more points', String(97 + 96 + 95 + 94 + 93 + 92 + 91)],
  ]);
});

test('no points and no drops: only the totals', () => {
  const text = formatSummary(summary({ events: 0, lost: 0, perPoint: new Map(), drops: new Map() }), { color: false });
  assert.doesNotMatch(text, /observation point|drop reason/);
  assert.match(text, /│ dropped packets +│ +0 │/);
});

test('colour: headers, drops and losses painted, same cells underneath', () => {
  const text = formatSummary(summary(), { color: true });
  assert.match(text, ESC);
  assert.match(text, /\u001b\[31mNETFILTER_DROP\u001b\[39m/);
  assert.match(text, /\u001b\[33m12\u001b\[39m/);
  assert.equal(text.replace(/\u001b\[[0-9;]*m/g, ''), formatSummary(summary(), { color: false }));
});

test('numbers and times', () => {
  assert.equal(groupDigits(0), '0');
  assert.equal(groupDigits(999), '999');
  assert.equal(groupDigits(1000), '1,000');
  assert.equal(groupDigits(1234567), '1,234,567');
  assert.equal(formatRunTime(0.4), '0 ms');
  assert.equal(formatRunTime(999.4), '999 ms');
  assert.equal(formatRunTime(1500), '1.5 s');
  assert.equal(formatRunTime(245_000), '4 min 05 s');
});

test('drops are tabulated by reason and location when locations are known', async () => {
  const { formatSummary } = await import('../../src/output/summary.js');
  const out = formatSummary({
    events: 3, lost: 0, attached: 19, attachMs: 400, durationMs: 2000, stoppedBy: 'signal',
    perPoint: new Map([['kfree_skb', 3]]), drops: new Map([['NETFILTER_DROP', 2], ['NO_SOCKET', 1]]),
    dropSites: new Map([['NETFILTER_DROP\tnf_hook_slow+0x8e', 2], ['NO_SOCKET\t__udp4_lib_rcv+0x5e1', 1]]),
  }, { color: false });
  assert.match(out, /NETFILTER_DROP\s*│?\s*nf_hook_slow\+0x8e\s*│?\s*2/);
  assert.match(out, /NO_SOCKET\s*│?\s*__udp4_lib_rcv\+0x5e1\s*│?\s*1/);
});
