/**
 * pktpath's command line: argv → TraceConfig → runTrace. Usage errors exit 2
 * with one line, runtime failures exit 1, a normal stop exits 0.
 */
import { Command, CommanderError } from 'commander';
import { BpfError } from '../bpf/errors.js';
import { missingPrivileges } from '../kernel/privileges.js';
import { colorFor } from '../output/paint.js';
import { formatSummary, summaryLine } from '../output/summary.js';
import { planPointNames } from '../plan/plan.js';
import { type RawOptions, buildConfig } from './config.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.js';
import { addTraceOptions } from './options.js';
import { prepare, runTrace } from './run.js';
import { UsageError } from './values.js';

const VERSION = '0.1.0';

function fail(code: number, message: string): never {
  process.stderr.write(`pktpath: ${message}\n`);
  process.exit(code);
}

function requirePrivileges(): void {
  const missing = missingPrivileges();
  if (missing) fail(EXIT_FAILURE, `needs root to load its probes (missing ${missing}); run it with sudo`);
}

const say = (line: string) => process.stderr.write(`${line}\n`);

async function trace(opts: RawOptions, expression: string[]): Promise<number> {
  const cfg = buildConfig(opts, expression);
  requirePrivileges();
  const summary = await runTrace(cfg, prepare(cfg), {
    say,
    started: (session) => {
      const onSignal = () => session.stop('signal');
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('SIGHUP', onSignal);
    },
  });
  say(summaryLine(summary));
  if (process.stderr.isTTY) say(formatSummary(summary, { color: colorFor(cfg.output.color, true) }));
  return EXIT_OK;
}

async function list(opts: RawOptions, expression: string[]): Promise<number> {
  const { plan } = prepare(buildConfig(opts, expression));
  for (const name of planPointNames(plan)) process.stdout.write(`${name}\n`);
  for (const note of plan.notes) say(`pktpath: ${note}`);
  return EXIT_OK;
}

export function buildProgram(run: (p: Promise<number>) => void): Command {
  const program = addTraceOptions(new Command('pktpath'))
    .description('Trace the path of packets through the Linux kernel.')
    .version(VERSION)
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .action((expression: string[], opts: RawOptions) => run(trace(opts, expression)));

  addTraceOptions(program.command('list'))
    .description('list the observation points a trace with these options would attach, without attaching')
    .action((expression: string[], opts: RawOptions) => run(list(opts, expression)));

  program.command('doctor')
    .description('what this kernel allows, and what pktpath will use')
    .action(() => run(import('./doctor.js').then((m) => m.doctor())));

  program.command('demo')
    .description('make two network namespaces, send ping, UDP and TCP between them, and trace it')
    .action(() => run(import('./demo.js').then((m) => m.demo())));
  return program;
}

export function describeError(e: unknown): { code: number; message: string } {
  if (e instanceof UsageError) return { code: EXIT_USAGE, message: e.message };
  if (e instanceof BpfError) return { code: EXIT_FAILURE, message: e.message };
  return { code: EXIT_FAILURE, message: (e as Error)?.message ?? String(e) };
}

export function main(argv: string[]): void {
  const program = buildProgram((p) => {
    p.then((code) => process.exit(code), (e: unknown) => {
      const { code, message } = describeError(e);
      fail(code, message);
    });
  });
  program.exitOverride();
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s.replace(/^error: /, 'pktpath: ')),
  });
  try {
    program.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) process.exit(EXIT_OK);
      process.exit(EXIT_USAGE);
    }
    const { code, message } = describeError(e);
    fail(code, message);
  }
}
