import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { type RawOutputFileOptions, parseFileSize, parseOutputFileOptions } from '../../src/cli/trace-config.js';
import { addOutputFileOptions } from '../../src/cli/options.js';
import { UsageError, parseByteSize } from '../../src/cli/values.js';
import type { OutputFileOptions } from '../../src/output/config.js';
import { createOutputSinks, openOutputFile } from '../../src/output/create.js';
import { openOutputPath } from '../../src/output/files.js';
import { JourneySink } from '../../src/output/journey.js';
import { PcapngSink } from '../../src/output/pcapng.js';
import { RotatingFileWriter } from '../../src/output/rotate.js';
import { BatchedWriter } from '../../src/output/stream.js';
import type { TraceEvent } from '../../src/output/event.js';

/** What commander hands over for these arguments. */
function raw(args: string[]): RawOutputFileOptions {
  const cmd = addOutputFileOptions(
    new Command('pktpath').option('--output-file <path>').option('--output-json').exitOverride().configureOutput({ writeErr: () => {} }),
  );
  cmd.parse(args, { from: 'user' });
  return cmd.opts<RawOutputFileOptions>();
}

const parse = (args: string[]): OutputFileOptions => parseOutputFileOptions(raw(args));

/** The one-line UsageError these arguments give. */
function usageError(args: string[]): string {
  try {
    parse(args);
  } catch (e) {
    assert.ok(e instanceof UsageError, `UsageError, not ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/);
    return e.message;
  }
  assert.fail(`no error for ${args.join(' ')}`);
}

test('defaults', () => {
  assert.deepEqual(parse([]), { maxSize: null, maxBackups: 5, maxAgeDays: 0, compress: false, pcap: null, jsonFile: null, snaplen: 256, groupBy: null, force: false });
});

test('every option', () => {
  assert.deepEqual(
    parse([
      '--output-file', 'trace.txt', '--output-file-max-size', '100M', '--output-file-max-backups', '3',
      '--output-pcap', 'trace.pcapng', '--pcap-snaplen', '65535', '--group-by', 'skb', '--output-json-file', 'trace.jsonl',
      '--output-file-max-age', '7', '--output-file-compress',
    ]),
    { maxSize: 100 * 2 ** 20, maxBackups: 3, maxAgeDays: 7, compress: true, pcap: 'trace.pcapng', jsonFile: 'trace.jsonl', snaplen: 65535, groupBy: 'skb', force: false },
  );
  assert.equal(parse(['--output-file', 'f', '--output-file-max-backups', '0']).maxBackups, 0);
  assert.equal(parse(['--group-by', 'SKB']).groupBy, 'skb');
});

test('sizes', () => {
  const f = '--output-file-max-size';
  assert.equal(parseByteSize(f, '4096'), 4096);
  assert.equal(parseByteSize(f, '512k'), 512 * 1024);
  assert.equal(parseByteSize(f, '512KiB'), 512 * 1024);
  assert.equal(parseByteSize(f, '10 MB'), 10 * 2 ** 20);
  assert.equal(parseByteSize(f, '1.5G'), 1.5 * 2 ** 30);
  assert.equal(parseByteSize(f, '2T'), 2 * 2 ** 40);
  assert.equal(parseByteSize(f, '100b'), 100);
});

test('--output-file-max-size: a bare number is megabytes, as in pwru', () => {
  assert.equal(parseFileSize('--output-file-max-size', '100'), 100 * 2 ** 20);
  assert.equal(parseFileSize('--output-file-max-size', '4K'), 4096);
  assert.equal(parseFileSize('--output-file-max-size', '1.5G'), 1.5 * 2 ** 30);
});

test('bad values are one-line usage errors', () => {
  const cases: Array<[string[], string]> = [
    [['--output-file', 'f', '--output-file-max-size', '12Q'], "--output-file-max-size: '12Q' is not a size (e.g. 100M)"],
    [['--output-file', 'f', '--output-file-max-size', '-1M'], "--output-file-max-size: '-1M' is not a size (e.g. 100M)"],
    [['--output-file', 'f', '--output-file-max-size', '0'], "--output-file-max-size: '0' is below the smallest size, 4K (a bare number is in megabytes, as in pwru)"],
    [['--output-file', 'f', '--output-file-max-size', '100b'], "--output-file-max-size: '100b' is below the smallest size, 4K (a bare number is in megabytes, as in pwru)"],
    [['--output-file-max-backups', '3'], '--output-file-max-backups: rotation needs --output-file'],
    [['--output-file', 'f', '--output-file-max-size', '99999999999T'], "--output-file-max-size: '99999999999T' is too large"],
    [['--output-file-max-size', '1M'], '--output-file-max-size: rotation needs --output-file'],
    [['--output-file', 'f', '--output-file-max-backups', 'x'], "--output-file-max-backups: 'x' is not a non-negative whole number"],
    [['--output-file', 'f', '--output-file-max-backups', '1001'], "--output-file-max-backups: '1001' is out of range (0-1000)"],
    [['--pcap-snaplen', '0'], "--pcap-snaplen: '0' is out of range (1-65535)"],
    [['--pcap-snaplen', '65536'], "--pcap-snaplen: '65536' is out of range (1-65535)"],
    [['--pcap-snaplen', '1.5'], "--pcap-snaplen: '1.5' is not a non-negative whole number"],
    [['--output-pcap', ' '], '--output-pcap: needs a file name'],
    [['--output-file', 'same', '--output-pcap', 'same'], "--output-pcap: 'same' is also the --output-file"],
    [['--group-by', 'flow'], "--group-by: 'flow' is not one of skb, ct"],
    [['--output-file', 'f', '--output-file-max-age', '7'], '--output-file-max-age: applies to rotated files: it needs --output-file-max-size'],
    [['--output-file', 'f', '--output-file-max-size', '1M', '--output-file-max-age', '0'], "--output-file-max-age: '0' is out of range (1-3650)"],
    [['--output-file', 'f', '--output-file-compress'], '--output-file-compress: compresses rotated files: it needs --output-file-max-size'],
    [['--output-json-file', ' '], '--output-json-file: needs a file name'],
    [['--output-file', 'same', '--output-json-file', 'same'], "--output-json-file: 'same' is also another output"],
    [['--group-by', 'skb', '--output-json'], '--group-by: prints text blocks; it does not combine with --output-json'],
  ];
  for (const [args, message] of cases) assert.equal(usageError(args), message, args.join(' '));
});

test('help lists the options with their defaults', () => {
  const help = addOutputFileOptions(new Command('pktpath')).helpInformation();
  for (const flag of ['--output-file-max-size <size>', '--output-file-max-backups <n>', '--output-pcap <path>', '--pcap-snaplen <bytes>', '--group-by <what>']) {
    assert.ok(help.includes(flag), flag);
  }
  assert.match(help, /\(default: 5\)/);
  assert.match(help, /default: "256"/);
});

class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

const TEXT = { color: false, tcpFlags: false, stack: false, timestamp: 'none' } as const;

test('sinks: none by default', () => {
  const writer = new BatchedWriter(new Collect(), { isTTY: false });
  const sinks = createOutputSinks(parse([]), { writer, text: TEXT, onError: () => {} });
  assert.deepEqual(sinks, { main: null, extra: [] });
});

test('sinks: --group-by skb replaces the main sink, --output-pcap adds one', async () => {
  const out = new Collect();
  const writer = new BatchedWriter(out, { isTTY: false });
  const pcap = new Collect();
  const opened: string[] = [];
  const sinks = createOutputSinks(parse(['--group-by', 'skb', '--output-pcap', 'x.pcapng', '--pcap-snaplen', '64']), {
    writer,
    text: TEXT,
    onError: () => {},
    openPcap: (p) => {
      opened.push(p);
      return pcap;
    },
  });
  assert.ok(sinks.main instanceof JourneySink);
  assert.equal(sinks.extra.length, 1);
  assert.ok(sinks.extra[0] instanceof PcapngSink);
  assert.deepEqual(opened, ['x.pcapng']);

  const e: TraceEvent = {
    timeNs: 1n, sinceStartNs: 1n, skb: 0xffff888000000100n, cpu: 0, pid: 1, comm: 'ping', netns: 1, netnsName: '', mark: 0,
    ifindex: 1, ifname: 'lo', protocol: 0x0800, mtu: 65536, len: 100, tuple: null, func: 'consume_skb',
    probe: { type: 'tracepoint', name: 'consume_skb' }, dropReason: null, caller: null, stack: null,
    packet: { data: new Uint8Array(100), origLen: 100, l2: false },
  };
  for (const s of [sinks.main!, ...sinks.extra]) s.event(e);
  await Promise.all([sinks.main!.close(), ...sinks.extra.map((s) => s.close())]);
  assert.match(out.text, /^0xffff888000000100 - ping:1 {2}1 hop in 0\.000µs, consumed\n/);
  assert.equal((sinks.extra[0] as PcapngSink).packets, 1);
  assert.ok(pcap.writableEnded);
});

test('sinks: a pcap file that cannot be written is reported with its name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-opts-'));
  try {
    const path = join(dir, 'missing', 'x.pcapng');
    const errors: string[] = [];
    const reported = new Promise<void>((resolve) => {
      const sinks = createOutputSinks(parse(['--output-pcap', path]), {
        writer: new BatchedWriter(new Collect(), { isTTY: false }),
        text: TEXT,
        onError: (m) => {
          errors.push(m);
          resolve();
        },
      });
      void sinks.extra[0]!.close().catch(() => {});
    });
    await reported;
    assert.equal(errors.length, 1);
    assert.ok(errors[0]!.startsWith(`cannot write ${path}: ENOENT`), errors[0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('output file: plain, or rotating with a maximum size', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktpath-opts-'));
  try {
    const plain = openOutputFile(openOutputPath('--output-file', join(dir, 'a.txt'), false), { maxSize: null, maxBackups: 5, maxAgeDays: 0, compress: false });
    assert.ok(plain instanceof WriteStream);
    const rotating = openOutputFile(openOutputPath('--output-file', join(dir, 'b.txt'), false), { maxSize: 8, maxBackups: 1, maxAgeDays: 0, compress: false });
    assert.ok(rotating instanceof RotatingFileWriter);
    const writer = new BatchedWriter(rotating, { isTTY: false, maxDelayMs: 0 });
    for (const l of ['one', 'two', 'three']) writer.write(l);
    await writer.close();
    await new Promise<void>((resolve) => plain.end(resolve));
    assert.equal(readFileSync(join(dir, 'b.txt'), 'utf8'), 'three\n');
    assert.equal(readFileSync(join(dir, 'b.txt.1'), 'utf8'), 'one\ntwo\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
