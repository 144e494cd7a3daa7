/**
 * `pktpath explain TRACE`: for each journey of a recorded trace that did not
 * arrive, why (src/regress/explain/, docs/EXPLAIN.md). Explanations are
 * findings, not errors: exit 0 when the trace was read, whatever it shows;
 * `--fail-on-cause` makes them a CI failure (exit 1); bad input exits 2.
 */
import { Command } from 'commander';
import { jsonText } from '../output/escape.js';
import { CAUSES, type Cause } from '../regress/explain/inputs.js';
import { EXIT_FAILURE, EXIT_OK } from './exit.js';
import { UsageError } from './values.js';

export interface ExplainOptions {
  json?: boolean;
  failOnCause?: string[];
}

/** `--fail-on-cause any` or cause codes, comma-separated or repeated. */
function failingCauses(values: string[] | undefined): Set<Cause> | 'any' | null {
  if (values === undefined || values.length === 0) return null;
  const codes = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  if (codes.includes('any')) return 'any';
  for (const c of codes) {
    if (!(CAUSES as readonly string[]).includes(c)) throw new UsageError(`--fail-on-cause: '${c}' is no cause; one of any, ${CAUSES.join(', ')}`);
  }
  return new Set(codes as Cause[]);
}

export async function explain(file: string, opts: ExplainOptions): Promise<number> {
  const failOn = failingCauses(opts.failOnCause);
  const { checkTraceFile } = await import('../regress/records.js');
  checkTraceFile(file);
  const { explainFile, explanationText } = await import('../regress/explain/file.js');
  const { explanations, lost } = await explainFile(file);
  let out = '';
  for (const e of explanations) out += opts.json ? `${jsonText(e)}\n` : explanationText(e);
  if (!opts.json) {
    if (explanations.length === 0) out += 'nothing to explain: every journey arrived, or ended where the trace cannot tell it did not\n';
    if (lost > 0) out += `(${lost} records were lost while recording: journeys may be missing hops)\n`;
  }
  process.stdout.write(out);
  const failed = failOn !== null && explanations.some((e) => failOn === 'any' || failOn.has(e.cause));
  return failed ? EXIT_FAILURE : EXIT_OK;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function addExplainCommand(program: Command, run: (p: Promise<number>) => void): void {
  program.command('explain')
    .argument('<trace>', 'a trace (JSON lines from `pktpath record` or --output-json)')
    .description('why each journey that did not arrive did not: a cause, a sentence, the evidence (docs/EXPLAIN.md); exit 0 when read, 2 bad input')
    .option('--json', 'explanation records (schema/event.v1.json) instead of text')
    .option('--fail-on-cause <causes>', 'exit 1 when one of these causes (comma-separated, or `any`) is found: for CI', collect, [])
    .action((trace: string, opts: ExplainOptions) => run(explain(trace, opts)));
}
