/**
 * Terminal escapes in names and trace files: whatever a trace holds (a
 * comm, a device, a namespace, a point, a drop reason, an nft rule, stack
 * symbols, a file's own name), what pktpath prints holds no control
 * character but the newline, no DEL, no C1 and no bidi control — in text,
 * --group-by, JSON lines, normalize, diff, assert and error lines — and
 * reads back to what was there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { escapeLines, escapeMessage, escapeText, isControl, jsonText, quoteText } from '../../src/output/escape.js';
import { eventFromJson } from '../../src/output/json-read.js';
import { type JsonRecord, jsonLine, toJsonRecord } from '../../src/output/json.js';
import { formatSummary, summaryLine } from '../../src/output/summary.js';
import { TextFormatter } from '../../src/output/text.js';
import { assertClean } from '../helpers/clean.js';
import { PKTPATH } from '../helpers/tracer.js';

/** Clear screen, a window title (OSC … BEL), a C1 CSI, a right-to-left override and an isolate, DEL, CR, LF, a tab. */
const EVIL = '\x1b[2J\x1b]0;owned\x07\u009b31m\u202egnp\u2066\x7f\r\n\t';

/** escapeText's inverse, as a person reads it. */
function unescape(s: string): string {
  return s.replace(/\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})/g, (_, e: string) =>
    e === '\\' ? '\\' : String.fromCharCode(parseInt(e.slice(1), 16)));
}

test('escapeText: controls, DEL, C1 and bidi controls as escapes; names without them are returned as they are', () => {
  assert.equal(escapeText('\x1b[2J'), '\\x1b[2J');
  assert.equal(escapeText('a\u009bb\u202ec\u2069\x7f\n\t'), 'a\\x9bb\\u202ec\\u2069\\x7f\\x0a\\x09');
  assert.equal(escapeText('caf\u00e9 \u{1f600} \u2192'), 'caf\u00e9 \u{1f600} \u2192', 'printable Unicode and surrogate pairs stay');
  assert.equal(escapeText('\ud800x\udc00'), '\\ud800x\\udc00', 'lone surrogates');
  const name = 'veth-a';
  assert.equal(escapeText(name), name);
  // A backslash is doubled only where it would read as an escape: a regular expression reads as typed.
  assert.equal(escapeText('tc:\\w+\\.'), 'tc:\\w+\\.');
  assert.equal(escapeText('\\x1b'), '\\\\x1b');
  assert.equal(escapeText('a\\'), 'a\\\\');
  assert.equal(escapeText('\\\x1b'), '\\\\\\x1b');
});

test('escapeText reads back to the string, whatever it holds', () => {
  const alphabet = ['a', '\\', 'x', 'u', '1', 'b', '\x1b', '\x00', '\x7f', '\u0085', '\u009b', '\u202e', '\u2028', '\ud83d', '\ude00', '"', ' '];
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % alphabet.length;
  for (let n = 0; n < 5000; n++) {
    let s = '';
    for (let i = 0, len = n % 12; i < len; i++) s += alphabet[rand()];
    const e = escapeText(s);
    assertClean(e, JSON.stringify(s));
    assert.equal(unescape(e), s, JSON.stringify(s));
  }
});

test('escapeLines and escapeMessage keep their lines; a message keeps only indented ones', () => {
  assert.equal(escapeLines('a\x1b\n b\x9b'), 'a\\x1b\n b\\x9b');
  assert.equal(escapeMessage('load: EACCES\n  0: r0 = 1\n  1: exit'), 'load: EACCES\n  0: r0 = 1\n  1: exit');
  assert.equal(escapeMessage('t\nforged.jsonl:1: not JSON'), 't\\x0aforged.jsonl:1: not JSON');
  assert.equal(quoteText('say "hi"\x1b'), '"say \\"hi\\"\\x1b"');
});

test('jsonText: the same JSON value, without DEL, C1 or bidi controls raw', () => {
  const v = { s: EVIL, a: [EVIL, 'plain'], n: 1 };
  const text = jsonText(v);
  assertClean(text, 'jsonText');
  assert.deepEqual(JSON.parse(text), v);
  assert.equal(jsonText({ s: 'plain' }), JSON.stringify({ s: 'plain' }));
  // Every character text escapes, JSON escapes too, and no other.
  for (let c = 0; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = String.fromCharCode(c);
    const json = jsonText(ch);
    assert.equal(JSON.parse(json), ch);
    assert.equal(json.slice(1, -1) === ch, !isControl(c) && c !== 0x22 && c !== 0x5c, `U+${c.toString(16)}`);
  }
});

// ---------------------------------------------------------------------------
// A trace with the evil string in every field a person reads.

const tuple = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 4321, dport: 53, proto: 'udp' as const, flags: '' };
const ctTuple = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 4321, dport: 53, proto: 'udp' as const };

function record(n: number, func: string, extra: Partial<JsonRecord> = {}): JsonRecord {
  return {
    v: 1, time: `2026-12-01T00:00:00.00000${n}000Z`, skb: '0xffff888100000100', cpu: 0, process: `c${EVIL}:4242`, pid: 4242,
    netns: 4026532001, netns_name: `n${EVIL}`, mark: 0, iface: `i${EVIL}:2`, ifindex: 2, proto: 2048, mtu: 1500, len: 60,
    tuple, func, probe: { type: 'tracepoint', name: func }, drop_reason: null, caller: null, stack: [`s${EVIL}+0x1/0x2`, 'ip_rcv+0x10/0x40'],
    ...extra,
  };
}

function evilTrace(end: 'kfree_skb' | 'consume_skb'): object[] {
  return [
    { v: 1, type: 'header', pktpath: '0', kernel: `k${EVIL}`, time: '2026-12-01T00:00:00.000000000Z', argv: [EVIL], command: [`x${EVIL}`],
      points: [], notes: [EVIL], namespaces: [{ inode: 4026532001, name: `n${EVIL}`, self: false }] },
    record(1, `f${EVIL}`, {
      // Status names and tunnel kinds are the schema's own words: a file with others is refused as it is read (below, in memory).
      ct: { source: 'nfct', found: true, state: 'ESTABLISHED', dir: 'orig', id: '0xffff888100abcd00', status: ['CONFIRMED'], zone: 0, mark: 0,
        error: 0, orig: ctTuple, reply: { ...ctTuple, saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 53, dport: 4321 } },
      verdict: { action: 'drop', target: { kind: 'peer', direction: 'ingress', ifindex: 3, iface: `t${EVIL}`, netns: 1, netns_name: `tn${EVIL}` },
        by: [{ id: 7, name: `p${EVIL}` }], reason: `vr${EVIL}`, inferred: true, evidence: `e${EVIL}` },
      tunnel: { kind: 'vxlan', vni: 42, inner: null },
      skb_metadata: { [`skb->m${EVIL}`]: 1 },
      skb_dump: { dev: `d${EVIL}`, skb: `(struct sk_buff){\n .x = ${EVIL},\n}`, shared_info: null, cb: null },
    }),
    record(2, 'nf:ipv4:local_in', {
      nft: { family: 'inet', table: `t${EVIL}`, chain: `c${EVIL}`, handle: 3, rule: `udp dport 53 drop comment "${EVIL}"`, kind: 'rule',
        verdict: 'drop', target: null, trace_id: 1 },
    }),
    record(3, end, end === 'kfree_skb' ? { drop_reason: `R${EVIL}`, caller: `k${EVIL}+0x1/0x2` } : {}),
  ];
}

test('text, journeys and the summary of events full of escapes print none of them', () => {
  const events = (evilTrace('kfree_skb').slice(1) as JsonRecord[]).map((r) => eventFromJson(r, 0n));
  events[0]!.tuple = { ...events[0]!.tuple!, saddr: `a${EVIL}` };
  events[0]!.ct!.status = [`S${EVIL}`];
  events[0]!.tunnel = { ...events[0]!.tunnel!, kind: `vxlan${EVIL}` as 'vxlan' };
  const f = new TextFormatter({ tuple: true, meta: true, stack: true, caller: true, tcpFlags: true, ct: true, timestamp: 'absolute',
    color: false, netnsNames: true });
  for (const e of events) {
    const line = f.formatEvent(e);
    assertClean(line, 'text line');
    assert.match(line, /n\\x1b\[2J\\x1b\]0;owned\\x07\\x9b31m\\u202egnp\\u2066\\x7f\\x0d\\x0a\\x09 /);
  }
  const summary = {
    events: 2, lost: 0, attached: 1, attachMs: 1, durationMs: 1, stoppedBy: 'signal',
    perPoint: new Map([[`f${EVIL}`, 1]]), drops: new Map([[`R${EVIL}`, 1]]), dropSites: new Map([[`R${EVIL}\tk${EVIL}`, 1]]),
    expectedFrees: new Map([[`E${EVIL}\tk${EVIL}`, 1]]),
  };
  assertClean(formatSummary(summary, { color: false }), 'summary tables');
  assertClean(summaryLine(summary), 'summary line');
  // JSON lines: the same record, its strings with JSON's escapes (and \u escapes for C1 and bidi).
  for (const e of events) {
    const line = jsonLine(e, { stack: true });
    assertClean(line, 'JSON line');
    assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify(toJsonRecord(e, { stack: true }))));
    assert.equal(line, jsonText(toJsonRecord(e, { stack: true })));
  }
});

// ---------------------------------------------------------------------------
// The commands, on files: what they write to stdout and stderr.

const dir = mkdtempSync(join(tmpdir(), 'pktpath-escape-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, records: object[]): string {
  const file = join(dir, name);
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

function pktpath(args: string[]): { code: number | null; stdout: Buffer; stderr: Buffer } {
  const r = spawnSync(process.execPath, [PKTPATH, ...args], { env: { ...process.env, NO_COLOR: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function clean(args: string[], code = 0): string {
  const r = pktpath(args);
  assert.equal(r.code, code, `pktpath ${args.join(' ')}: ${r.stderr.toString()}`);
  assertClean(r.stdout, `pktpath ${args[0]} stdout`);
  assertClean(r.stderr, `pktpath ${args[0]} stderr`);
  return r.stdout.toString('utf8');
}

const dropped = write('dropped.jsonl', evilTrace('kfree_skb'));
const consumed = write('consumed.jsonl', evilTrace('consume_skb'));
const all = ['--output-tuple', '--output-meta', '--output-stack', '--output-caller', '--output-ct', '--output-netns-names', '--color', 'never'];

test('pktpath show: text with every column and section', () => {
  const out = clean(['show', dropped, ...all]);
  for (const seen of ['n\\x1b[2J', 'i\\x1b[2J', 'f\\x1b[2J', 'R\\x1b[2J', 'k\\x1b[2J', 's\\x1b[2J',
    'p\\x1b[2J', 't\\x1b[2J', 'skb->m\\x1b[2J', 'd\\x1b[2J', ' .x = \\x1b[2J', 'comment \\"\\x1b[2J']) {
    assert.ok(out.includes(seen), `${seen} in\n${out}`);
  }
});

test('pktpath show: colour is pktpath\'s own escapes and no other', () => {
  const r = pktpath(['show', dropped, ...all.slice(0, -2), '--color', 'always']);
  assert.equal(r.code, 0, r.stderr.toString());
  const text = r.stdout.toString('utf8').replace(/\x1b\[[0-9;]*m/g, '');
  assertClean(text, 'coloured text without its SGR sequences');
});

test('pktpath show --group-by skb and --group-by ct', () => {
  const skb = clean(['show', dropped, '--group-by', 'skb', '--output-stack', '--output-caller']);
  assert.match(skb, /dropped: R\\x1b\[2J/);
  assert.match(skb, / c\\x1b\[2J.*:4242/);
  const ct = clean(['show', dropped, '--group-by', 'ct']);
  assert.match(ct, / f\\x1b\[2J.* → kfree_skb  dropped: R\\x1b\[2J/);
});

test('pktpath show --output-json: valid JSON without raw C1 or bidi controls, read back by show as it was', () => {
  const json = clean(['show', dropped, '--output-json', '--output-stack']);
  const lines = json.trim().split('\n');
  const [header, first, nft] = lines.map((l) => JSON.parse(l) as JsonRecord & { kernel?: string });
  assert.equal(lines.length, 4);
  assert.equal(header!.kernel, `k${EVIL}`);
  assert.equal(first!.process, `c${EVIL}:4242`);
  assert.equal(nft!.nft!.rule, `udp dport 53 drop comment "${EVIL}"`);
  const again = write('again.jsonl', lines.map((l) => JSON.parse(l) as object));
  assert.equal(clean(['show', again, ...all]), clean(['show', dropped, ...all]));
});

test('pktpath normalize, as text and as JSON', () => {
  const text = clean(['normalize', dropped, '--text']);
  assert.match(text, /dropped: R\\x1b\[2J/);
  const json = clean(['normalize', dropped]);
  for (const line of json.trim().split('\n')) JSON.parse(line);
  assert.ok(json.includes('k\\u001b[2J'), json);
});

test('pktpath diff, as text and JSON', () => {
  const text = clean(['diff', dropped, consumed, '--color', 'never'], 1);
  assert.match(text, /f\\x1b\[2J.* n\\x1b\[2J.*\/i\\x1b\[2J.* DROP peer → t\\x1b\[2J.* by p\\x1b\[2J/);
  assert.match(text, /nft inet t\\x1b\[2J.* "udp dport 53 drop comment /);
  const json = clean(['diff', dropped, consumed, '--json'], 1);
  JSON.parse(json);
});

test('pktpath assert: results and JUnit', () => {
  const expect = join(dir, 'expect.yaml');
  writeFileSync(expect, JSON.stringify({ expect: [{ name: `n${EVIL}`, match: { proto: 'udp' }, ends: 'ended' }] }));
  const junit = join(dir, 'junit.xml');
  const out = clean(['assert', dropped, '--expect', expect, '--junit', junit, '--color', 'never'], 1);
  assert.match(out, /✗ n\\x1b\[2J/);
  assert.match(out, /dropped: R\\x1b\[2J.* at n\\x1b\[2J/);
  assertClean(spawnSync('cat', [junit]).stdout, 'JUnit report');
});

test('error lines: a file name and a value quoted from a file', () => {
  const name = write(`t${EVIL}.jsonl`, [{ v: `\u009b2J${EVIL}` }]);
  for (const cmd of [['show', name], ['normalize', name], ['diff', name, name], ['assert', name, '--expect', join(dir, 'expect.yaml')]]) {
    clean(cmd, 2);
  }
  const r = pktpath(['show', name]);
  assert.match(r.stderr.toString(), /^pktpath: .*t\\x1b\[2J.*\.jsonl:1: schema version "\\x9b2J/);
  assert.equal(r.stderr.toString().split('\n').length, 2, 'one line');
  assert.match(clean(['show', dropped, `--output-tuplex=${EVIL}`], 2), /^$/);
  assert.match(pktpath(['show', dropped, `--output-tuplex=${EVIL}`]).stderr.toString(), /^pktpath: unknown option '--output-tuplex=\\x1b\[2J/);
  const missing = pktpath(['normalize', join(dir, `no\nsuch${EVIL}`)]);
  assert.equal(missing.code, 2);
  assertClean(missing.stderr, 'a missing file');
  assert.match(missing.stderr.toString(), /^pktpath: .*no\\x0asuch\\x1b\[2J.*: cannot read: ENOENT\n$/);
});
