/**
 * Hostile input, one table: files pktpath reads but did not write (traces,
 * expectations, profiles, BTF) made to hurt it — devices, FIFOs, gigabytes
 * without a newline, compressed or UTF-16 text, fields of the wrong type,
 * lines out of place, alias bombs, profiles that write files. Each case runs
 * pktpath as a process and must give one line on stderr naming the file (and
 * the line and field where there is one), exit 2, no stack trace, in bounded
 * time and memory, with no file changed. No root needed.
 *
 * To add a case: one entry in CASES — pktpath's arguments, the files to make
 * first, the line expected on stderr.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { root } from '../helpers/probe-btf.js';
import { FIELD_CASES, FULL_TRACE, ORDER_CASES, traceText } from '../helpers/records.js';
import { PKTPATH } from '../helpers/tracer.js';

/** What a file of a case is: its bytes, or a FIFO, a sparse file of a size, a symbolic link, a directory. */
type Content = string | Buffer | { fifo: true } | { sparse: number } | { link: string } | { hard: string } | { dir: true };

interface HostileCase {
  /** What it is about, for the summary: trace file, trace line, expectation, profile, BTF, or a control that must work. */
  kind: string;
  name: string;
  /** pktpath's arguments; `{d}` stands for the case's own directory. */
  argv: string[];
  /** Files to make in that directory first (paths relative to it); a function is called then (large contents). */
  files?: Record<string, Content | (() => Content)>;
  /** Added to the environment, `{d}` substituted. */
  env?: Record<string, string>;
  /** The line on stderr (after `pktpath: `), `{d}` standing for the directory; null: stderr not looked at. */
  line: RegExp | null;
  /** The exit code: 2 unless said. */
  code?: number;
  /** Lines on stderr: 1 unless said. */
  lines?: number;
  stdout?: RegExp;
  /** A live trace (root): run in a network namespace of its own, so that nothing of the machine's is observed. */
  live?: true;
}

/** Every case's directory holds these: a good trace, a good expectation file, and a copy of /etc/passwd a profile might aim at. */
const BASIC = readFileSync(join(root, 'fixtures/golden/basic.jsonl'), 'utf8');
const COMMON: Record<string, Content> = {
  'good.jsonl': BASIC,
  'good.yaml': 'expect:\n  - name: any packet\n',
  passwd: readFileSync('/etc/passwd'),
};

const MiB = 2 ** 20;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A pattern of a path and what is said of it; `{d}` kept, for the case's directory. */
const say = (path: string, says: string) => new RegExp(`^${esc(path).replaceAll('\\{d\\}', '{d}')}${esc(says)}$`);

/** The commands that read a trace, with the trace at `t`; outputs they might write aim into the case's directory. */
const TRACE_COMMANDS: Array<[string, (t: string) => string[]]> = [
  ['show', (t) => ['show', t]],
  ['normalize', (t) => ['normalize', t, '--out', '{d}/out.jsonl']],
  ['diff (first)', (t) => ['diff', t, '{d}/good.jsonl']],
  ['diff (second)', (t) => ['diff', '{d}/good.jsonl', t]],
  ['assert', (t) => ['assert', t, '--expect', '{d}/good.yaml', '--junit', '{d}/report.xml']],
  ['explain', (t) => ['explain', t]],
];

/** A file that is no trace, at `path` (made from `files`), and what pktpath says of it. */
interface BadFile {
  name: string;
  path: string;
  files?: Record<string, Content | (() => Content)>;
  /** After `pktpath: PATH`. */
  says: string;
}

const T = '{d}/t.jsonl';
const bom = (bytes: number[], text: Buffer) => Buffer.concat([Buffer.from(bytes), text]);
const utf16be = (s: string) => Buffer.from(s, 'utf16le').swap16();
const LONG = ': a line longer than 16 MiB; a trace line pktpath writes is under 1 MiB';

const BAD_TRACES: BadFile[] = [
  { name: '/dev/zero', path: '/dev/zero', says: ': not a regular file (a character device)' },
  { name: 'a FIFO', path: T, files: { 't.jsonl': { fifo: true } }, says: ': not a regular file (a FIFO)' },
  { name: 'a link to /dev/zero', path: T, files: { 't.jsonl': { link: '/dev/zero' } }, says: ': not a regular file (a character device)' },
  { name: 'a directory', path: T, files: { 't.jsonl': { dir: true } }, says: ': is a directory' },
  { name: 'missing', path: T, says: ': cannot read: ENOENT' },
  { name: 'empty', path: T, files: { 't.jsonl': '' }, says: ': is empty: no records' },
  { name: '600 MB without a newline', path: T, files: { 't.jsonl': { sparse: 600e6 } }, says: `:1${LONG}` },
  { name: 'a 17 MiB line', path: T, files: { 't.jsonl': () => `{"v":1,"skb":"${'A'.repeat(17 * MiB)}"}\n` }, says: `:1${LONG}` },
  { name: 'a 40 MiB line after good ones', path: T, files: { 't.jsonl': () => `${BASIC}{"v":1,"x":"${'A'.repeat(40 * MiB)}` }, says: `:11${LONG}` },
  { name: 'gzip', path: T, files: { 't.jsonl': gzipSync(BASIC) }, says: ': gzip-compressed: decompress it first (gunzip)' },
  { name: 'zstd', path: T, files: { 't.jsonl': Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]) }, says: ': zstd-compressed: decompress it first (unzstd)' },
  { name: 'UTF-16 LE', path: T, files: { 't.jsonl': bom([0xff, 0xfe], Buffer.from(BASIC, 'utf16le')) }, says: ': UTF-16 text (byte-order mark FF FE): pktpath reads UTF-8 (iconv -f UTF-16 -t UTF-8)' },
  { name: 'UTF-16 BE', path: T, files: { 't.jsonl': bom([0xfe, 0xff], utf16be(BASIC)) }, says: ': UTF-16 text (byte-order mark FE FF): pktpath reads UTF-8 (iconv -f UTF-16 -t UTF-8)' },
  { name: 'UTF-16 without a byte-order mark', path: T, files: { 't.jsonl': Buffer.from(BASIC, 'utf16le') }, says: ':1: not text: a NUL byte at column 2 (a binary file, or UTF-16 without a byte-order mark?)' },
];

/** Expectation files that are none: for assert, and for normalize and diff, which take --expect too. */
const LAUGHS = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((l, i) => `${l}: &${l} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`), 'expect: []', ''].join('\n');
const E = '{d}/e.yaml';
const BAD_EXPECTATIONS: BadFile[] = [
  { name: '/dev/zero', path: '/dev/zero', says: ': not a regular file (a character device)' },
  { name: 'a FIFO', path: E, files: { 'e.yaml': { fifo: true } }, says: ': not a regular file (a FIFO)' },
  { name: 'a link to /dev/zero', path: E, files: { 'e.yaml': { link: '/dev/zero' } }, says: ': not a regular file (a character device)' },
  { name: 'a directory', path: E, files: { 'e.yaml': { dir: true } }, says: ': is a directory' },
  { name: '2 MiB', path: E, files: { 'e.yaml': () => `expect:\n  - name: x\n${'# padding\n'.repeat(2 * MiB / 10)}` }, says: ': larger than 1 MiB; an expectation file is a few KiB' },
  { name: '10 GB sparse', path: E, files: { 'e.yaml': { sparse: 10e9 } }, says: ': larger than 1 MiB; an expectation file is a few KiB' },
  { name: 'gzip', path: E, files: { 'e.yaml': gzipSync('expect:\n  - name: x\n') }, says: ': gzip-compressed: decompress it first (gunzip)' },
  { name: 'UTF-16', path: E, files: { 'e.yaml': bom([0xff, 0xfe], Buffer.from('expect: []\n', 'utf16le')) }, says: ': UTF-16 text (byte-order mark FF FE): pktpath reads UTF-8 (iconv -f UTF-16 -t UTF-8)' },
  { name: 'a billion laughs', path: E, files: { 'e.yaml': LAUGHS }, says: ': aliases that expand too far (a "billion laughs"?): write the values out' },
];

/** Profile files that are none, for --profile. */
const P = '{d}/p.yaml';
const BAD_PROFILES: BadFile[] = [
  { name: '/dev/zero', path: '/dev/zero', says: ': not a regular file (a character device)' },
  { name: 'a FIFO', path: P, files: { 'p.yaml': { fifo: true } }, says: ': not a regular file (a FIFO)' },
  { name: 'a link to /dev/zero', path: P, files: { 'p.yaml': { link: '/dev/zero' } }, says: ': not a regular file (a character device)' },
  { name: 'a directory', path: P, files: { 'p.yaml': { dir: true } }, says: ': is a directory' },
  { name: '10 GB sparse', path: P, files: { 'p.yaml': { sparse: 10e9 } }, says: ': larger than 1 MiB; a profile is a few lines' },
  { name: 'gzip', path: P, files: { 'p.yaml': gzipSync('options:\n  output-tuple: true\n') }, says: ': gzip-compressed: decompress it first (gunzip)' },
  { name: 'UTF-16', path: P, files: { 'p.yaml': bom([0xfe, 0xff], utf16be('options:\n  output-tuple: true\n')) }, says: ': UTF-16 text (byte-order mark FE FF): pktpath reads UTF-8 (iconv -f UTF-16 -t UTF-8)' },
  { name: 'a billion laughs', path: P, files: { 'p.yaml': LAUGHS }, says: ':1: unknown key \'a\' (a profile has description and options)' },
];

/** Options a profile may not give, as a profile line, and the words pktpath says of them. */
const WRITING_OPTIONS: Array<[string, string]> = [
  ['output-file: {d}/passwd', 'output-file writes files'],
  ['output-pcap: {d}/passwd', 'output-pcap writes files'],
  ['output-json-file: {d}/passwd', 'output-json-file writes files'],
  ['ready-file: {d}/passwd', 'ready-file creates and removes a file'],
  ['force: true', 'force replaces files'],
  ['output-file-max-size: 4K', 'output-file-max-size renames and removes files'],
  ['output-file-max-backups: 1', 'output-file-max-backups removes files'],
  ['output-file-compress: true', 'output-file-compress rewrites files'],
  ['output-file-max-age: 1', 'output-file-max-age deletes files'],
];

const PROFILE_DIR = 'cfg/pktpath/profiles';
const XDG = { XDG_CONFIG_HOME: '{d}/cfg' };
const fullTrace = traceText(FULL_TRACE());

/** A path written where the rules of src/output/files.ts refuse it, and what is said (after `pktpath: `). */
const G = '{d}/good.jsonl';
const refusedOutput = (name: string, argv: string[], line: RegExp, files?: HostileCase['files'], live?: true): HostileCase =>
  ({ kind: 'output path', name, argv, line, files, ...(live ? { live } : {}) });
const SAME_INPUT = (flag: string, path: string, input: string, inputPath: string) =>
  say(`${flag}: '${path}' is the same file as ${input} '${inputPath}'`, ', which this command reads; pktpath never writes over its input, --force or not');
const LINK = (flag: string, path: string) => say(`${flag}: '${path}'`, ' is a symbolic link; pktpath writes only to the file named, never through a link');
const EXISTS = (flag: string, path: string) => say(`${flag}: '${path}'`, ' exists; pktpath does not overwrite a file unless --force is given');
const NO_DIR = (flag: string, path: string) => say(`${flag}: '${path}'`, ': its directory does not exist');
const IS_DIR = (flag: string, path: string) => say(`${flag}: '${path}'`, ' is a directory; name a file in it');
const EMPTY = (flag: string) => say(`${flag}:`, ' the path is empty');
const TWIN = (flag: string, path: string, other: string, otherPath: string) => say(`${flag}: '${path}' is the same file as ${other} '${otherPath}'`, '');
const toPasswd = { 'out': { link: '{d}/passwd' } } as const;
const hardToGood = (): Record<string, Content> => ({ 'again.jsonl': { hard: '{d}/good.jsonl' } });

const OUTPUT_CASES: HostileCase[] = [
  // show: its outputs never its trace, never through a link, never over a file unasked.
  ...['--output-file', '--output-json-file', '--output-pcap'].map((flag) =>
    refusedOutput(`show ${flag} the trace it reads, --force`, ['show', G, flag, G, '--force'], SAME_INPUT(flag, G, 'TRACE', G))),
  refusedOutput('show --output-file the trace by another path', ['show', G, '--output-file', '{d}/./good.jsonl', '--force'], SAME_INPUT('--output-file', '{d}/./good.jsonl', 'TRACE', G)),
  refusedOutput('show --output-file a hard link of the trace', ['show', G, '--output-file', '{d}/again.jsonl', '--force'], SAME_INPUT('--output-file', '{d}/again.jsonl', 'TRACE', G), hardToGood()),
  refusedOutput('show --output-file a link to passwd, --force', ['show', G, '--output-file', '{d}/out', '--force'], LINK('--output-file', '{d}/out'), toPasswd),
  refusedOutput('show --output-pcap an existing file', ['show', G, '--output-pcap', '{d}/passwd'], EXISTS('--output-pcap', '{d}/passwd')),
  refusedOutput('show --output-file \'\'', ['show', G, '--output-file', ''], EMPTY('--output-file')),
  refusedOutput('show --output-json-file in a missing directory', ['show', G, '--output-json-file', '{d}/no/such/x'], NO_DIR('--output-json-file', '{d}/no/such/x')),
  refusedOutput('show --output-file a directory', ['show', G, '--output-file', '{d}/sub'], IS_DIR('--output-file', '{d}/sub'), { sub: { dir: true } }),
  refusedOutput('show --output-file and --output-json-file one new file', ['show', G, '--output-file', '{d}/o', '--output-json-file', '{d}/./o'], TWIN('--output-json-file', '{d}/./o', '--output-file', '{d}/o')),
  refusedOutput('show --output-file and --output-pcap one existing file, --force', ['show', G, '--output-file', '{d}/passwd', '--output-pcap', '{d}/./passwd', '--force'], TWIN('--output-pcap', '{d}/./passwd', '--output-file', '{d}/passwd')),
  refusedOutput('show rotation over a FILE.2 that exists', ['show', G, '--output-file', '{d}/o.txt', '--output-file-max-size', '4K'], say('--output-file: \'{d}/o.txt.2\'', ' exists and rotation would replace it; pktpath does not unless --force is given'), { 'o.txt.2': 'older' }),
  refusedOutput('show rotation over the trace it reads, --force', ['show', '{d}/o.txt.1', '--output-file', '{d}/o.txt', '--output-file-max-size', '4K', '--force'], SAME_INPUT('--output-file', '{d}/o.txt.1', 'TRACE', '{d}/o.txt.1'), { 'o.txt.1': BASIC }),
  refusedOutput('show rotation of /dev/null', ['show', G, '--output-file', '/dev/null', '--output-file-max-size', '4K'], say('--output-file-max-size: \'/dev/null\'', ' is not a regular file; only a file pktpath makes is rotated')),
  // normalize --out and assert --junit: opened before anything is read.
  refusedOutput('normalize --out the trace, --force', ['normalize', G, '--out', G, '--force'], SAME_INPUT('--out', G, 'TRACE', G)),
  refusedOutput('normalize --out the expectation file, --force', ['normalize', G, '--expect', '{d}/good.yaml', '--out', '{d}/good.yaml', '--force'], SAME_INPUT('--out', '{d}/good.yaml', '--expect', '{d}/good.yaml')),
  refusedOutput('normalize --out a link to passwd', ['normalize', G, '--out', '{d}/out'], LINK('--out', '{d}/out'), toPasswd),
  refusedOutput('normalize --out an existing file', ['normalize', G, '--out', '{d}/passwd'], EXISTS('--out', '{d}/passwd')),
  refusedOutput('normalize --out \'\'', ['normalize', G, '--out', ''], EMPTY('--out')),
  refusedOutput('normalize --out in a missing directory', ['normalize', G, '--out', '{d}/no/such/x'], NO_DIR('--out', '{d}/no/such/x')),
  refusedOutput('normalize --out a directory', ['normalize', G, '--out', '{d}/sub', '--force'], IS_DIR('--out', '{d}/sub'), { sub: { dir: true } }),
  refusedOutput('assert --junit the trace, --force', ['assert', G, '--expect', '{d}/good.yaml', '--junit', G, '--force'], SAME_INPUT('--junit', G, 'TRACE', G)),
  refusedOutput('assert --junit the expectation file, --force', ['assert', G, '--expect', '{d}/good.yaml', '--junit', '{d}/good.yaml', '--force'], SAME_INPUT('--junit', '{d}/good.yaml', '--expect', '{d}/good.yaml')),
  refusedOutput('assert --junit a link to passwd, --force', ['assert', G, '--expect', '{d}/good.yaml', '--junit', '{d}/out', '--force'], LINK('--junit', '{d}/out'), toPasswd),
  refusedOutput('assert --junit an existing file', ['assert', G, '--expect', '{d}/good.yaml', '--junit', '{d}/passwd'], EXISTS('--junit', '{d}/passwd')),
  refusedOutput('assert --junit \'\'', ['assert', G, '--expect', '{d}/good.yaml', '--junit', ''], EMPTY('--junit')),
  refusedOutput('assert --junit in a missing directory', ['assert', G, '--expect', '{d}/good.yaml', '--junit', '{d}/no/such/x'], NO_DIR('--junit', '{d}/no/such/x')),
  refusedOutput('assert --expect \'\'', ['assert', G, '--expect', ''], /^assert: --expect FILE is required$/),
  // A bad trace under a report asked for: exit 2, and no half-made report left.
  refusedOutput('assert --junit over a bad trace', ['assert', '{d}/bad.jsonl', '--expect', '{d}/good.yaml', '--junit', '{d}/r.xml'], /^{d}\/bad\.jsonl:1: not JSON/, { 'bad.jsonl': '{"v":1,\n' }),
  refusedOutput('normalize --out over a bad trace', ['normalize', '{d}/bad.jsonl', '--out', '{d}/n.jsonl'], /^{d}\/bad\.jsonl:1: not JSON/, { 'bad.jsonl': '{"v":1,\n' }),
  // Live traces (root, in a namespace of their own): the ready file and the outputs, checked before anything is attached.
  refusedOutput('--ready-file a link to passwd, --force', ['--ready-file', '{d}/out', '--force'], LINK('--ready-file', '{d}/out'), toPasswd, true),
  refusedOutput('--ready-file an existing file', ['--ready-file', '{d}/passwd'], EXISTS('--ready-file', '{d}/passwd'), undefined, true),
  refusedOutput('--ready-file in a missing directory', ['--ready-file', '{d}/no/such/ready'], NO_DIR('--ready-file', '{d}/no/such/ready'), undefined, true),
  refusedOutput('--ready-file a directory', ['--ready-file', '{d}/sub', '--force'], IS_DIR('--ready-file', '{d}/sub'), { sub: { dir: true } }, true),
  refusedOutput('--ready-file /dev/null, --force', ['--ready-file', '/dev/null', '--force'], say('--ready-file: \'/dev/null\'', ' is not a regular file; the ready file is made and removed by pktpath'), undefined, true),
  refusedOutput('--ready-file the --output-file, new', ['--output-file', '{d}/t.txt', '--ready-file', '{d}/./t.txt'], TWIN('--ready-file', '{d}/./t.txt', '--output-file', '{d}/t.txt'), undefined, true),
  refusedOutput('--ready-file the --output-file, existing, --force', ['--output-file', '{d}/passwd', '--ready-file', '{d}/passwd', '--force'], TWIN('--ready-file', '{d}/passwd', '--output-file', '{d}/passwd'), undefined, true),
  refusedOutput('record --ready-file its --out, --force', ['record', '--out', '{d}/r.jsonl', '--ready-file', '{d}/r.jsonl', '--force', '--', 'true'], TWIN('--ready-file', '{d}/r.jsonl', '--out', '{d}/r.jsonl'), undefined, true),
  refusedOutput('--ready-file the --kernel-btf it reads, --force', ['--kernel-btf', '/sys/kernel/btf/vmlinux', '--ready-file', '/sys/kernel/btf/vmlinux', '--force'], SAME_INPUT('--ready-file', '/sys/kernel/btf/vmlinux', '--kernel-btf', '/sys/kernel/btf/vmlinux'), undefined, true),
  refusedOutput('--output-file the profile it reads, --force', ['--profile', '{d}/p.yaml', '--output-file', '{d}/p.yaml', '--force'], SAME_INPUT('--output-file', '{d}/p.yaml', '--profile', '{d}/p.yaml'), { 'p.yaml': 'options:\n  output-tuple: true\n' }, true),
  refusedOutput('record --out an existing file', ['record', '--out', '{d}/passwd', '--', 'true'], EXISTS('--out', '{d}/passwd'), undefined, true),
  refusedOutput('record --out a link to passwd, --force', ['record', '--out', '{d}/out', '--force', '--', 'true'], LINK('--out', '{d}/out'), toPasswd, true),
  refusedOutput('--output-pcap \'\'', ['--output-pcap', ''], /^--output-pcap: needs a file name$/, undefined, true),
  refusedOutput('--output-json-file a directory', ['--output-json-file', '{d}/sub'], IS_DIR('--output-json-file', '{d}/sub'), { sub: { dir: true } }, true),
  refusedOutput('--output-file rotation over FILE.1.gz', ['--output-file', '{d}/o.txt', '--output-file-max-size', '4K', '--output-file-compress'], say('--output-file: \'{d}/o.txt.1.gz\'', ' exists and rotation would replace it; pktpath does not unless --force is given'), { 'o.txt.1.gz': 'older' }, true),
];

const CASES: HostileCase[] = [
  ...OUTPUT_CASES,
  // Files that are no trace, through every command that reads one.
  ...BAD_TRACES.flatMap((f) => TRACE_COMMANDS.map(([cmd, argv]): HostileCase => ({
    kind: 'trace file', name: `${cmd}: ${f.name}`, argv: argv(f.path), files: f.files, line: say(f.path, f.says),
  }))),
  // A line of a trace wrong, through the commands in turn.
  ...[...FIELD_CASES, ...ORDER_CASES].map((c, i): HostileCase => {
    // show renders recorded traces only: a normalised one goes to the commands that read it.
    // explain, like show, reads recorded traces only.
    const commands = c.normalized ? TRACE_COMMANDS.slice(1, -1) : TRACE_COMMANDS;
    const [cmd, argv] = commands[i % commands.length]!;
    return {
      kind: 'trace line', name: `${cmd}: ${c.name}`, argv: argv(T), files: { 't.jsonl': traceText(c.lines()) },
      line: new RegExp(`^{d}/t\\.jsonl:${c.line}: ${c.message.source.replace(/^\^/, '')}`),
    };
  }),
  // Expectation files that are none, wherever --expect is taken.
  ...BAD_EXPECTATIONS.map((f): HostileCase => ({
    kind: 'expectation', name: `assert --expect ${f.name}`, argv: ['assert', '{d}/good.jsonl', '--expect', f.path, '--junit', '{d}/report.xml'],
    files: f.files, line: say(f.path, f.says),
  })),
  { kind: 'expectation', name: 'normalize --expect /dev/zero', argv: ['normalize', '{d}/good.jsonl', '--expect', '/dev/zero', '--out', '{d}/out.jsonl'], line: say('/dev/zero', ': not a regular file (a character device)') },
  { kind: 'expectation', name: 'diff --expect a FIFO', argv: ['diff', '{d}/good.jsonl', '{d}/good.jsonl', '--expect', E], files: { 'e.yaml': { fifo: true } }, line: say(E, ': not a regular file (a FIFO)') },
  { kind: 'expectation', name: 'normalize --expect a billion laughs', argv: ['normalize', '{d}/good.jsonl', '--expect', E], files: { 'e.yaml': LAUGHS }, line: say(E, ': aliases that expand too far (a "billion laughs"?): write the values out') },
  // Profile files that are none, given by path to `list`, `record` and the trace.
  ...BAD_PROFILES.map((f): HostileCase => ({
    kind: 'profile', name: `list --profile ${f.name}`, argv: ['list', '--profile', f.path], files: f.files, line: say(`profile ${f.path}`, f.says),
  })),
  { kind: 'profile', name: 'record --profile a FIFO', argv: ['record', '--profile', P, '--out', '{d}/r.jsonl', '--', 'true'], files: { 'p.yaml': { fifo: true } }, line: say(`profile ${P}`, ': not a regular file (a FIFO)') },
  { kind: 'profile', name: 'the trace --profile /dev/zero', argv: ['--profile', '/dev/zero'], line: say('profile /dev/zero', ': not a regular file (a character device)') },
  // Profiles that would write files: refused at load, whoever runs pktpath.
  ...WRITING_OPTIONS.map(([option, says]): HostileCase => ({
    kind: 'profile', name: `list --profile with ${option.split(':')[0]}`, argv: ['list', '--profile', P],
    files: { 'p.yaml': `description: mine\noptions:\n  ${option}\n  output-tuple: true\n` },
    line: say(`profile ${P}`, `:3: ${says}: give it on the command line, not in a profile`),
  })),
  { kind: 'profile', name: 'the trace --profile with output-file', argv: ['--profile', P, '--output-tuple'], files: { 'p.yaml': 'options:\n  output-file: {d}/passwd\n  force: true\n' }, line: say(`profile ${P}`, ':2: output-file writes files: give it on the command line, not in a profile') },
  { kind: 'profile', name: 'record --profile with out', argv: ['record', '--profile', P, '--out', '{d}/r.jsonl', '--', 'true'], files: { 'p.yaml': 'options:\n  out: {d}/passwd\n' }, line: say(`profile ${P}`, ':2: out writes files: give it on the command line, not in a profile') },
  // The profile directory's entries: by name, and listed.
  { kind: 'profile', name: '--profile NAME, a link to /dev/zero', argv: ['list', '--profile', 'zero'], env: XDG, files: { [`${PROFILE_DIR}/zero.yaml`]: { link: '/dev/zero' } }, line: say(`profile {d}/${PROFILE_DIR}/zero.yaml`, ': not a regular file (a character device)') },
  { kind: 'profile', name: '--profile NAME, a FIFO', argv: ['list', '--profile', 'fifo'], env: XDG, files: { [`${PROFILE_DIR}/fifo.yaml`]: { fifo: true } }, line: say(`profile {d}/${PROFILE_DIR}/fifo.yaml`, ': not a regular file (a FIFO)') },
  {
    kind: 'profile', name: 'profiles: a link to /dev/zero among them', argv: ['profiles'], env: XDG, lines: 2, stdout: /^zero\t.*\tbroken: profile .*zero\.yaml: not a regular file/m,
    files: { [`${PROFILE_DIR}/zero.yaml`]: { link: '/dev/zero' }, [`${PROFILE_DIR}/ok.yaml`]: 'options:\n  output-tuple: true\n' },
    line: say(`profile {d}/${PROFILE_DIR}/zero.yaml`, ': not a regular file (a character device)'),
  },
  {
    kind: 'profile', name: 'profiles: a FIFO and a file-writing one among them', argv: ['profiles'], env: XDG, lines: 2,
    files: { [`${PROFILE_DIR}/a.yaml`]: { fifo: true }, [`${PROFILE_DIR}/b.yaml`]: 'options:\n  output-pcap: {d}/passwd\n' },
    line: say(`profile {d}/${PROFILE_DIR}/a.yaml`, ': not a regular file (a FIFO) (and 1 more broken: listed above)'),
  },
  // BTF files that are none.
  ...([
    ['/dev/zero', '/dev/zero', undefined, ': not a regular file (a character device)'],
    ['a FIFO', '{d}/v.btf', { fifo: true }, ': not a regular file (a FIFO)'],
    ['a link to /dev/zero', '{d}/v.btf', { link: '/dev/zero' }, ': not a regular file (a character device)'],
    ['a directory', '{d}/v.btf', { dir: true }, ': is a directory'],
    ['300 MB sparse', '{d}/v.btf', { sparse: 300e6 }, ': larger than 256 MiB; a kernel\'s BTF is a few MiB'],
    ['missing', '{d}/v.btf', undefined, ': cannot read: ENOENT'],
  ] as const).map(([name, path, content, says]): HostileCase => ({
    kind: 'BTF', name: `list --kernel-btf ${name}`, argv: ['list', '--kernel-btf', path], files: content ? { 'v.btf': content } : undefined,
    line: say(`--kernel-btf: ${path}`, says),
  })),
  // What pktpath writes still reads: every section, a byte-order mark, aliases in a profile.
  { kind: 'control', name: 'show: every section', argv: ['show', T, '--output-ct', '--output-stack'], files: { 't.jsonl': fullTrace }, code: 0, line: /^3 of 3 events shown$/ },
  { kind: 'control', name: 'normalize: every section, after a UTF-8 byte-order mark', argv: ['normalize', T], files: { 't.jsonl': `\ufeff${fullTrace}` }, code: 0, lines: 0, line: null, stdout: /"type":"packet"/ },
  {
    kind: 'control', name: 'show --output-json: a lost record of nft\'s stays nft\'s', argv: ['show', T, '--output-json'], code: 0, line: /^9 of 9 events shown$/,
    files: { 't.jsonl': `${BASIC}{"v":1,"type":"lost","count":7,"total":7,"time":"2026-11-27T05:30:01.000000000Z","source":"nft"}\n` },
    stdout: /^\{"v":1,"type":"lost","time":"2026-11-27T05:30:01\.000000000Z","count":7,"total":7,"source":"nft"\}$/m,
  },
  { kind: 'control', name: 'diff: a trace with itself', argv: ['diff', T, T], files: { 't.jsonl': fullTrace }, code: 0, lines: 0, line: null },
  { kind: 'control', name: 'assert: every section', argv: ['assert', T, '--expect', '{d}/good.yaml'], files: { 't.jsonl': fullTrace }, code: 0, lines: 0, line: null },
  {
    kind: 'control', name: 'profiles: aliases', argv: ['profiles'], env: XDG, code: 0, line: /^user profiles are read from /,
    files: { [`${PROFILE_DIR}/dns.yaml`]: 'description: DNS\noptions:\n  filter-dst-port: &p 53\n  filter-src-port: *p\n' },
    stdout: /--filter-dst-port 53 --filter-src-port 53/,
  },
];

/** Every entry under `dir` (links not followed): kind, size, mode, time and the bytes of small files. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const s = lstatSync(path);
      const bytes = s.isFile() && s.size <= MiB ? readFileSync(path).toString('base64') : '';
      out.set(path, `${s.mode} ${s.size} ${s.mtimeMs} ${bytes}`);
      if (s.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out;
}

function make(dir: string, files: Record<string, Content | (() => Content)>): void {
  for (const [rel, made] of Object.entries(files)) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    const c = typeof made === 'function' ? made() : made;
    if (typeof c === 'string') writeFileSync(path, c.replaceAll('{d}', dir));
    else if (Buffer.isBuffer(c)) writeFileSync(path, c);
    else if ('fifo' in c) spawnSync('mkfifo', [path]);
    else if ('sparse' in c) {
      writeFileSync(path, '');
      truncateSync(path, c.sparse);
    } else if ('link' in c) symlinkSync(c.link.replaceAll('{d}', dir), path);
    else if ('hard' in c) linkSync(c.hard.replaceAll('{d}', dir), path);
    else mkdirSync(path);
  }
}

const top = mkdtempSync(join(tmpdir(), 'pktpath-hostile-'));
const worst = { rssKiB: 0, rssCase: '', ms: 0, msCase: '' };
const kinds = new Map<string, { cases: number; passed: number }>();
after(() => {
  rmSync(top, { recursive: true, force: true });
  const summary = [...kinds].map(([k, n]) => `${k} ${n.passed}/${n.cases}`).join(', ');
  console.log(`hostile input: ${CASES.length} cases (${summary}); worst RSS ${(worst.rssKiB / 1024).toFixed(0)} MiB (${worst.rssCase}), ` +
    `longest ${worst.ms.toFixed(0)} ms (${worst.msCase})`);
});

test('the table: names are unique, and there are cases of every kind', () => {
  assert.equal(new Set(CASES.map((c) => `${c.kind}: ${c.name}`)).size, CASES.length);
  assert.ok(CASES.length >= 120, `${CASES.length} cases`);
});

const isRoot = process.getuid?.() === 0;

for (const [i, c] of CASES.entries()) {
  test(`${c.kind}: ${c.name}`, { skip: c.live && !isRoot ? 'a live trace needs root' : false }, () => {
    const count = kinds.get(c.kind) ?? { cases: 0, passed: 0 };
    kinds.set(c.kind, { ...count, cases: count.cases + 1 });
    const dir = join(top, String(i));
    mkdirSync(dir);
    make(dir, { ...COMMON, ...c.files });
    const d = (s: string) => s.replaceAll('{d}', dir);
    const before = snapshot(dir);
    const rssFile = join(top, `${i}.rss`);
    const t0 = performance.now();
    // GNU time writes the peak RSS to a file (stderr stays pktpath's); timeout kills a pktpath that blocks.
    const own = c.live ? ['unshare', '--net', '--'] : [];
    const r = spawnSync('/usr/bin/time', ['-o', rssFile, '-f', '%M', 'timeout', '-s', 'KILL', '20', ...own, process.execPath, PKTPATH, ...c.argv.map(d)], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...Object.fromEntries(Object.entries(c.env ?? {}).map(([k, v]) => [k, d(v)])) },
      maxBuffer: 64 * MiB,
    });
    const ms = performance.now() - t0;
    const rssKiB = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
    if (rssKiB > worst.rssKiB) Object.assign(worst, { rssKiB, rssCase: c.name });
    if (ms > worst.ms) Object.assign(worst, { ms, msCase: c.name });
    const lines = r.stderr.split('\n').filter(Boolean);
    const context = `pktpath ${c.argv.join(' ')}\nexit ${r.status}\n${r.stderr.slice(0, 2000)}`;
    assert.equal(r.status, c.code ?? 2, context);
    assert.ok(lines.every((l) => l.startsWith('pktpath: ') && !/^\s+at /.test(l)), `every line pktpath's own, no stack trace:\n${context}`);
    assert.equal(lines.length, c.lines ?? 1, context);
    if (c.line) {
      const line = new RegExp(c.line.source.replaceAll('{d}', esc(dir)).replace(/^\^/, '^pktpath: '));
      assert.ok(lines.some((l) => line.test(l)), `expected ${line}\n${context}`);
    }
    if (c.stdout) assert.match(r.stdout, c.stdout, context);
    assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
    assert.ok(rssKiB < 300 * 1024, `peak RSS ${(rssKiB / 1024).toFixed(0)} MiB`);
    assert.deepEqual(snapshot(dir), before, 'no file changed, none made');
    rmSync(dir, { recursive: true, force: true });
    kinds.get(c.kind)!.passed++;
  });
}
