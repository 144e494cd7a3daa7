/**
 * The CI commands: `normalize`, `diff` and `assert`, over traces that
 * `pktpath record` (or `--output-json`) wrote. None needs root or the kernel.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import { Command } from 'commander';
import { type InputFile, type OpenedOutput, discardOutput, openOutputPath } from '../output/files.js';
import { colorFor } from '../output/paint.js';
import { COLOR_MODES } from '../output/config.js';
import type { Expectations } from '../regress/expect.js';
import type { JourneyOptions } from '../regress/journeys.js';
import { type VarOptions, parseCidr } from '../regress/vars.js';
import { EXIT_FAILURE, EXIT_OK } from './exit.js';
import { UsageError, parseChoice, parseRegex } from './values.js';

// The readers of expectations (yaml, ajv) and JUnit (fast-xml-parser) load only for the commands that need them.
const loadExpectations = async (file: string) => (await import('../regress/expect.js')).loadExpectations(file);
const useColor = (when: string | undefined) => colorFor(parseChoice('--color', when ?? 'auto', COLOR_MODES), process.stdout.isTTY === true);

interface VarFlags {
  var: string[];
  varNetns?: string;
  varNode?: string;
  keepPorts?: boolean;
  keepNeighbour?: boolean;
  expect?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** What may differ between runs: the flags, and the `vars` of an expectation file. */
function addVarOptions(cmd: Command): Command {
  return cmd
    .option('--var <cidr>', 'addresses that differ between runs (pod IPs), as placeholders $a1, $a2, …; repeatable', collect, [])
    .option('--var-netns <regex>', 'namespace names that differ between runs, as placeholders $n1, $n2, …')
    .option('--var-node <regex>', 'node names that differ between runs (merged traces), as placeholders $node1, $node2, …')
    .option('--keep-ports', 'keep ephemeral ports (32768 and up) instead of placeholders $p1, $p2, …')
    .option('--keep-neighbour', 'keep ARP and IPv6 neighbour discovery (left out: timing decides whether they happen)');
}

function journeyOptions(f: VarFlags, expectations: Expectations | null): { opts: JourneyOptions; vars: string[] } {
  const texts = [...f.var, ...(expectations?.vars ?? [])];
  const addresses = texts.map((t) => {
    const c = parseCidr(t);
    if (!c) throw new UsageError(`--var: '${t}' is not an address or CIDR (e.g. 10.244.0.0/16)`);
    return c;
  });
  const netnsText = f.varNetns ?? expectations?.varNetns ?? null;
  const vars: VarOptions = {
    addresses,
    ephemeralPorts: !f.keepPorts,
    netns: netnsText === null ? null : parseRegex('--var-netns', netnsText),
    node: f.varNode === undefined ? null : parseRegex('--var-node', f.varNode),
  };
  const described = [...texts, ...(vars.ephemeralPorts ? ['ephemeral ports'] : []), ...(netnsText ? [`netns ${netnsText}`] : []),
    ...(f.varNode !== undefined ? [`node ${f.varNode}`] : [])];
  return { opts: { vars, keepNeighbour: !!f.keepNeighbour }, vars: described };
}

/** The files a command reads, as inputs no output may replace. */
function inputsOf(trace: string, expect: string | undefined): InputFile[] {
  return [{ flag: 'TRACE', path: trace }, ...(expect !== undefined ? [{ flag: '--expect', path: expect }] : [])];
}

/** A file the command writes, opened before anything is read (output-file rules: src/output/files.ts); null when not asked. */
function openOut(flag: string, path: string | undefined, force: boolean, inputs: InputFile[]): OpenedOutput | null {
  return path === undefined ? null : openOutputPath(flag, path, force, inputs);
}

/** Pieces written in batches of about a MiB, waiting while the reader is behind: no one string of it all. */
async function writePieces(pieces: Iterable<string>, out: NodeJS.WritableStream): Promise<void> {
  let batch = '';
  for (const piece of pieces) {
    batch += piece;
    if (batch.length < 1 << 20) continue;
    if (!out.write(batch)) await once(out, 'drain');
    batch = '';
  }
  if (batch !== '') out.write(batch);
}

async function normalize(file: string, f: VarFlags & { text?: boolean; out?: string; counts?: boolean; source?: boolean; force?: boolean }): Promise<number> {
  const { normalizeFile, writeNormalized, writeNormalizedText } = await import('../regress/normalize.js');
  const opened = openOut('--out', f.out, !!f.force, inputsOf(file, f.expect));
  let n;
  try {
    const expectations = f.expect ? await loadExpectations(f.expect) : null;
    const { opts, vars } = journeyOptions(f, expectations);
    n = await normalizeFile(file, opts, vars);
  } catch (e) {
    if (opened) discardOutput(opened);
    throw e;
  }
  const out = opened ? fs.createWriteStream(opened.path, { fd: opened.fd }) : process.stdout;
  (f.text ? writeNormalizedText : writeNormalized)(n, out, { counts: !!f.counts, noSource: f.source === false });
  if (opened) await new Promise<void>((resolve, reject) => (out as fs.WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
  return EXIT_OK;
}

async function diff(a: string, b: string, f: VarFlags & { json?: boolean; color?: string }): Promise<number> {
  const { normalizeFile } = await import('../regress/normalize.js');
  const { diffJson, diffTraces, formatDiff } = await import('../regress/diff.js');
  const color = useColor(f.color);
  const expectations = f.expect ? await loadExpectations(f.expect) : null;
  const { opts, vars } = journeyOptions(f, expectations);
  const na = await normalizeFile(a, opts, vars);
  const nb = await normalizeFile(b, opts, vars);
  const result = diffTraces(na, nb);
  await writePieces(f.json ? diffJson(result) : formatDiff(result, { a, b, color }), process.stdout);
  return result.changes.length === 0 ? EXIT_OK : EXIT_FAILURE;
}

async function assertCommand(trace: string, f: { expect?: string; junit?: string; color?: string; force?: boolean }): Promise<number> {
  if (f.expect === undefined || f.expect === '') throw new UsageError('assert: --expect FILE is required');
  const { assertTrace, formatResults } = await import('../regress/assert.js');
  const color = useColor(f.color);
  // Opened first: a report that cannot be written is bad input (exit 2), not a failed expectation found later.
  const junit = openOut('--junit', f.junit, !!f.force, inputsOf(trace, f.expect));
  let results;
  try {
    results = await assertTrace(trace, await loadExpectations(f.expect));
  } catch (e) {
    if (junit) discardOutput(junit);
    throw e;
  }
  process.stdout.write(formatResults(results, { color }));
  if (junit) {
    const { junitReport } = await import('../regress/junit.js');
    try {
      fs.writeFileSync(junit.fd, junitReport(results, { trace, expectations: f.expect }));
    } finally {
      fs.closeSync(junit.fd);
    }
  }
  return results.every((r) => r.ok) ? EXIT_OK : EXIT_FAILURE;
}

export function addRegressCommands(program: Command, run: (p: Promise<number>) => void): void {
  addVarOptions(program.command('normalize')
    .argument('<trace>', 'a trace (JSON lines from `pktpath record` or --output-json)')
    .description('the trace in canonical form: one journey per line, names instead of numbers, no times or addresses'))
    .option('--expect <file>', 'take the variable parts from this expectation file')
    .option('--text', 'for a person: a block per flow, a line per hop')
    .option('--counts', 'also write how many packets took each path (they differ between runs)')
    .option('--no-source', 'leave the kernel and command out of the header (golden files shared between machines)')
    .option('--out <file>', 'write here instead of stdout (made 0600; an existing file is replaced only with --force)')
    .option('--force', 'replace the --out file if it exists')
    .action((trace: string, f: VarFlags & { text?: boolean; out?: string; counts?: boolean; source?: boolean; force?: boolean }) => run(normalize(trace, f)));

  addVarOptions(program.command('diff')
    .argument('<a>', 'the trace to compare from (raw or normalised)')
    .argument('<b>', 'the trace to compare to')
    .description('what changed between two traces, per flow; exit 0 equal, 1 different, 2 bad input'))
    .option('--expect <file>', 'take the variable parts from this expectation file')
    .option('--json', 'the changes as JSON')
    .option('--color <when>', 'auto, always or never', 'auto')
    .action((a: string, b: string, f: VarFlags & { json?: boolean; color?: string }) => run(diff(a, b, f)));

  program.command('assert')
    .argument('<trace>', 'a trace (JSON lines from `pktpath record`)')
    .description('check a trace against an expectation file; exit 0 all hold, 1 one fails, 2 bad input')
    .option('--expect <file>', 'the expectations (YAML, schema/expect.v1.json)')
    .option('--junit <file>', 'also write a JUnit XML report, one test case per expectation (made 0600; an existing file is replaced only with --force)')
    .option('--force', 'replace the --junit file if it exists')
    .option('--color <when>', 'auto, always or never', 'auto')
    .action((trace: string, f: { expect?: string; junit?: string; color?: string; force?: boolean }) => run(assertCommand(trace, f)));
}
