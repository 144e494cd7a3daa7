/**
 * The CI commands: `normalize`, `diff` and `assert`, over traces that
 * `pktpath record` (or `--output-json`) wrote. None needs root or the kernel.
 */
import fs from 'node:fs';
import { Command } from 'commander';
import { jsonText } from '../output/escape.js';
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
  };
  const described = [...texts, ...(vars.ephemeralPorts ? ['ephemeral ports'] : []), ...(netnsText ? [`netns ${netnsText}`] : [])];
  return { opts: { vars, keepNeighbour: !!f.keepNeighbour }, vars: described };
}

/** A file to write, opened now: a path that cannot be written is bad input. */
function openOut(path: string): fs.WriteStream {
  try {
    return fs.createWriteStream(path, { fd: fs.openSync(path, 'w') });
  } catch (e) {
    throw new UsageError(`--out: cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function normalize(file: string, f: VarFlags & { text?: boolean; out?: string; counts?: boolean; source?: boolean }): Promise<number> {
  const { normalizeFile, writeNormalized, writeNormalizedText } = await import('../regress/normalize.js');
  const expectations = f.expect ? await loadExpectations(f.expect) : null;
  const { opts, vars } = journeyOptions(f, expectations);
  const n = await normalizeFile(file, opts, vars);
  const out = f.out ? openOut(f.out) : process.stdout;
  (f.text ? writeNormalizedText : writeNormalized)(n, out, { counts: !!f.counts, noSource: f.source === false });
  if (f.out) await new Promise<void>((resolve, reject) => (out as fs.WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
  return EXIT_OK;
}

async function diff(a: string, b: string, f: VarFlags & { json?: boolean; color?: string }): Promise<number> {
  const { normalizeFile } = await import('../regress/normalize.js');
  const { diffTraces, formatDiff } = await import('../regress/diff.js');
  const color = useColor(f.color);
  const expectations = f.expect ? await loadExpectations(f.expect) : null;
  const { opts, vars } = journeyOptions(f, expectations);
  const na = await normalizeFile(a, opts, vars);
  const nb = await normalizeFile(b, opts, vars);
  const result = diffTraces(na, nb);
  if (f.json) process.stdout.write(`${jsonText(result)}\n`);
  else process.stdout.write(formatDiff(result, { a, b, color }));
  return result.changes.length === 0 ? EXIT_OK : EXIT_FAILURE;
}

async function assertCommand(trace: string, f: { expect?: string; junit?: string; color?: string }): Promise<number> {
  if (!f.expect) throw new UsageError('assert: --expect FILE is required');
  const { assertTrace, formatResults } = await import('../regress/assert.js');
  const color = useColor(f.color);
  const expectations = await loadExpectations(f.expect);
  const results = await assertTrace(trace, expectations);
  process.stdout.write(formatResults(results, { color }));
  if (f.junit) {
    const { junitReport } = await import('../regress/junit.js');
    fs.writeFileSync(f.junit, junitReport(results, { trace, expectations: f.expect }));
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
    .option('--out <file>', 'write here instead of stdout')
    .action((trace: string, f: VarFlags & { text?: boolean; out?: string; counts?: boolean; source?: boolean }) => run(normalize(trace, f)));

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
    .option('--junit <file>', 'also write a JUnit XML report, one test case per expectation')
    .option('--color <when>', 'auto, always or never', 'auto')
    .action((trace: string, f: { expect?: string; junit?: string; color?: string }) => run(assertCommand(trace, f)));
}
