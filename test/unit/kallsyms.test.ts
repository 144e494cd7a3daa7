import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kallsyms, MAX_SYMBOL_OFFSET, backgroundKallsyms, parseKallsyms } from '../../src/kernel/kallsyms.js';

const SNIPPET = [
  'ffffffff81000000 T _stext',
  'ffffffff81000000 T _text',
  'ffffffff81001000 t do_one_initcall',
  'ffffffff81002000 D some_data',
  'ffffffff81002100 b some_bss',
  'ffffffff81003000 W weak_fn',
  'ffffffff81003040 T ip_rcv',
  'ffffffffc0203000 t ftrace_trampoline\t[__builtin__ftrace]',
  'ffffffffc0a01010 t nf_hook_thing\t[nf_conntrack]',
  'ffffffffc0a01000 t ip_rcv\t[dummy_mod]',
  'ffffffffc0a01000 r ro_thing\t[nf_conntrack]',
  'garbage line',
  '',
].join('\n');

test('parseKallsyms: keeps text and weak symbols, sorted', () => {
  const ks = parseKallsyms(SNIPPET);
  assert.equal(ks.size, 8);
  const names = Array.from({ length: ks.size }, (_, i) => ks.nameAt(i));
  assert.deepEqual(names, [
    '_stext', '_text', 'do_one_initcall', 'weak_fn', 'ip_rcv',
    'ftrace_trampoline [__builtin__ftrace]', 'ip_rcv [dummy_mod]', 'nf_hook_thing [nf_conntrack]',
  ]);
  assert.equal(ks.addressAt(7), 0xffffffffc0a01010n);
});

test('Kallsyms.lookup and format', () => {
  const ks = parseKallsyms(SNIPPET);
  assert.deepEqual(ks.lookup(0xffffffff81001000n), { name: 'do_one_initcall', offset: 0, address: 0xffffffff81001000n });
  assert.deepEqual(ks.lookup(0xffffffff81001234n), { name: 'do_one_initcall', offset: 0x234, address: 0xffffffff81001000n });
  // Data symbols are not kept, so this falls into the preceding function.
  assert.equal(ks.lookup(0xffffffff81002100n)?.name, 'do_one_initcall');
  // Aliases at one address: the first listed wins.
  assert.equal(ks.lookup(0xffffffff81000010n)?.name, '_stext');
  assert.equal(ks.lookup(0xffffffffc0a0100fn)?.name, 'ip_rcv [dummy_mod]');
  assert.equal(ks.lookup(0xffffffffc0a01011n)?.name, 'nf_hook_thing [nf_conntrack]');
  assert.equal(ks.lookup(0xffffffff80ffffffn), null);
  assert.equal(ks.lookup(0n), null);
  assert.equal(ks.lookup(0xffffffffc0a01010n + BigInt(MAX_SYMBOL_OFFSET) + 1n), null);

  assert.equal(ks.format(0xffffffff81003045n), 'ip_rcv+0x5');
  assert.equal(ks.format(0xffffffff81003040n), 'ip_rcv+0x0');
  assert.equal(ks.format(0xffffffffc0203010n), 'ftrace_trampoline+0x10 [__builtin__ftrace]');
  assert.equal(ks.format(0x1234n), '0x1234');
  // The hot path takes the two 32-bit halves directly.
  assert.equal(ks.indexOf(0xffffffff, 0x81003041), 4);
});

test('Kallsyms.addressOf', () => {
  const ks = parseKallsyms(SNIPPET);
  // The core kernel's symbol wins over a module's of the same name.
  assert.equal(ks.addressOf('ip_rcv'), 0xffffffff81003040n);
  assert.equal(ks.addressOf('ip_rcv [dummy_mod]'), 0xffffffffc0a01000n);
  assert.equal(ks.addressOf('nf_hook_thing'), 0xffffffffc0a01010n);
  assert.equal(ks.addressOf('some_data'), null);
  assert.equal(ks.addressOf('missing'), null);
});

test('parseKallsyms: hidden addresses, short addresses, CRLF', () => {
  const hidden = parseKallsyms('0000000000000000 T _stext\n0000000000000000 t foo\n');
  assert.equal(hidden.size, 0);
  assert.equal(hidden.lookup(0x1000n), null);
  assert.equal(hidden.format(0xffffffff81000000n), '0xffffffff81000000');
  const small = parseKallsyms('1000 T a\r\n2000 t b\t[m]\r\n');
  assert.equal(small.format(0x1001n), 'a+0x1');
  assert.equal(small.format(0x2002n), 'b+0x2 [m]');
  assert.equal(small.addressOf('b'), 0x2000n);
});

const HAVE = existsSync('/proc/kallsyms');
let real: Kallsyms | null = null;
let loadMs = 0;
if (HAVE) {
  const t0 = performance.now();
  real = Kallsyms.load();
  loadMs = performance.now() - t0;
}

test(`/proc/kallsyms: ${real?.size ?? 0} symbols loaded in ${loadMs.toFixed(1)} ms`, { skip: HAVE ? false : 'no /proc/kallsyms' }, (t) => {
  const ks = real!;
  if (ks.size === 0) { t.skip('addresses hidden (kptr_restrict)'); return; }
  assert.ok(ks.size > 10_000);
  for (let i = 1; i < ks.size; i++) assert.ok(ks.addressAt(i - 1) <= ks.addressAt(i), `unsorted at ${i}`);

  const ipRcv = ks.addressOf('ip_rcv');
  assert.ok(ipRcv !== null);
  assert.deepEqual(ks.lookup(ipRcv + 0x10n), { name: 'ip_rcv', offset: 0x10, address: ipRcv });
  assert.equal(ks.format(ipRcv + 0x2an), 'ip_rcv+0x2a');

  // Every 97th symbol resolves back to itself or an alias at the same address.
  for (let i = 0; i < ks.size; i += 97) {
    const hit = ks.lookup(ks.addressAt(i));
    assert.ok(hit);
    assert.equal(hit.offset, 0);
    assert.equal(ks.addressOf(hit.name) !== null, true);
  }

  const t0 = performance.now();
  let n = 0;
  for (let i = 0; i < 100_000; i++) if (ks.indexOf(0xffffffff, 0x81000000 + i * 997) >= 0) n++;
  const perLookupNs = ((performance.now() - t0) * 1e6) / 100_000;
  assert.ok(n > 0);
  assert.ok(perLookupNs < 5000, `${perLookupNs} ns per lookup`);
});

test('backgroundKallsyms: the table from the bytes read on its own thread answers like the one parsed here; a lookup before they are here reads the file itself', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-ks-'));
  try {
    const path = join(dir, 'kallsyms');
    writeFileSync(path, SNIPPET);
    const here = parseKallsyms(SNIPPET);
    const addrs = [0xffffffff81001010n, 0xffffffff81003044n, 0xffffffffc0a01014n, 0xffffffffc0a01000n, 0x1000n];
    const threaded = backgroundKallsyms(path);
    assert.equal(await threaded.ready, true, 'read on the thread');
    assert.deepEqual(addrs.map((a) => threaded.format(a)), addrs.map((a) => here.format(a)));
    assert.deepEqual(threaded.lookup(0xffffffff81003044n), here.lookup(0xffffffff81003044n));
    const early = backgroundKallsyms(path);
    assert.equal(early.format(0xffffffff81003044n), 'ip_rcv+0x4');
    assert.equal(await early.ready, false, 'read by the first lookup');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
