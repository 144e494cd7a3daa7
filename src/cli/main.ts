/**
 * pktpath's command line: argv → TraceConfig → runTrace. Usage errors exit 2
 * with one line, runtime failures exit 1, a normal stop exits 0.
 */
import { Command, CommanderError, Option } from 'commander';
import { BpfError } from '../bpf/errors.js';
import { OutputPathError } from '../output/files.js';
import { escapeText } from '../output/escape.js';
import { colorFor } from '../output/paint.js';
import { formatSummary, summaryLine } from '../output/summary.js';
import { planPointNames } from '../plan/plan.js';
import { type RawOptions, buildConfig } from './trace-config.js';
import { missingPrivileges } from '../kernel/privileges.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail, requirePrivileges } from './exit.js';
import { addTraceOptions } from './options.js';
import { type KnownOptions, expandProfiles, loadProfile } from './profiles.js';
import { addExplainCommand } from './explain.js';
import { addMergeCommand } from './merge.js';
import { addRegressCommands } from './regress.js';
import { openPods, prepare, prepareTrace, runTrace } from './run.js';
import { InputFileError } from '../regress/errors.js';
import type { RecordOptions } from './record.js';
import { UsageError } from './values.js';

import { VERSION } from './version.js';


const say = (line: string) => process.stderr.write(`${line}\n`);

async function trace(opts: RawOptions, expression: string[]): Promise<number> {
  const cfg = buildConfig(opts, expression);
  requirePrivileges();
  const pods = await openPods(cfg, say);
  let summary;
  try {
    summary = await runTrace(cfg, prepareTrace(cfg, undefined, pods), {
      say,
      started: (session) => {
        const onSignal = () => session.stop('signal');
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        process.on('SIGHUP', onSignal);
      },
    });
  } finally {
    pods.close();
  }
  say(summaryLine(summary));
  if (process.stderr.isTTY) say(formatSummary(summary, { color: colorFor(cfg.output.color, true) }));
  return EXIT_OK;
}

/** `pktpath list --funcs`: every kernel function taking an skb that could be probed, with the skb's position. */
async function listFunctions(opts: RawOptions, expression: string[]): Promise<number> {
  const cfg = buildConfig(opts, expression);
  const { discoverSkbFunctions, functionBackends } = await import('../kernel/functions.js');
  const found = discoverSkbFunctions();
  const re = cfg.attach.filterFunc;
  const shown = found.functions.filter((f) => re === null || re.test(f.name));
  if (re !== null && shown.length === 0) {
    throw new UsageError(`--filter-func: '${re.source}' finds no skb function in this kernel; \`pktpath list --funcs\` without it names them all`);
  }
  for (const f of shown) process.stdout.write(`${f.name}\tskb=arg${f.skbArg + 1}${f.module ? `\t[${f.module}]` : ''}\n`);
  const usable = functionBackends().filter((b) => b.ok).map((b) => b.backend);
  say(`pktpath: ${shown.length} skb functions (${found.filteredBy}); ` +
    (usable.length ? `this kernel probes them with ${usable.join(', ')}` : 'this kernel lets no backend probe them (`pktpath doctor` says why)'));
  return EXIT_OK;
}

async function list(opts: RawOptions, expression: string[]): Promise<number> {
  if (opts.funcs) return listFunctions(opts, expression);
  const { plan, kernel } = prepare(buildConfig(opts, expression));
  for (const name of planPointNames(plan)) process.stdout.write(`${name}\n`);
  for (const note of plan.notes) say(`pktpath: ${note}`);
  // What else runs where these points are (root only: the kernel lists programs to root).
  if (missingPrivileges() === null) {
    const { datapathInventory } = await import('../kernel/datapath.js');
    const { datapathSummary } = await import('./datapath.js');
    for (const line of datapathSummary(datapathInventory(kernel.namespaces.map((n) => n.netns)))) say(`pktpath: ${line}`);
  }
  return EXIT_OK;
}

/** commander's error text in pktpath's style: `pktpath: …`, one line. */
function oneLine(s: string): string {
  const first = s.trim().split('\n')[0] ?? '';
  return `${escapeText(first.replace(/^error: /, 'pktpath: '))}\n`;
}

export function buildProgram(run: (p: Promise<number>) => void, argv: string[] = process.argv): Command {
  // Set before the subcommands are made: they inherit it, so their usage errors read and exit like pktpath's own.
  const root = new Command('pktpath')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(oneLine(s)) });
  const program = addTraceOptions(root)
    .description('Trace the path of packets through the Linux kernel.')
    .version(VERSION)
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .action((expression: string[], opts: RawOptions) => run(trace(opts, expression)));

  addTraceOptions(program.command('list'))
    .description('list the observation points a trace with these options would attach, without attaching')
    .option('--funcs', 'list the kernel functions taking an skb (and the skb\'s argument position) instead, whether or not this kernel can probe them')
    .action((expression: string[], opts: RawOptions) => run(list(opts, expression)));

  addTraceOptions(program.command('record'))
    .usage('--out FILE [options] [expression...] -- COMMAND [ARGS...]')
    .description('attach, run COMMAND (the traffic), and write its trace as JSON lines that start with a header')
    .addOption(new Option('--out <file>', 'the trace file').helpGroup('Record:'))
    .addOption(new Option('--drain <ms>', 'after COMMAND exits, keep reading this long').default('250').helpGroup('Record:'))
    .addOption(new Option('--node <name>', 'the node the trace is made on, in its header (default: the host name; a DNS-1123 name); also turns on --output-wire and --output-tunnel, what `pktpath merge` pairs nodes\' packets by').helpGroup('Record:'))
    .action((operands: string[], opts: RecordOptions) => run(import('./record.js').then((m) => m.record(opts, operands, argv))));

  addTraceOptions(program.command('show'), true)
    .description('render a recorded JSON-lines trace as a live one would be: text with any columns, --group-by, JSON, pcapng from captured bytes; ' +
      'the filters apply to the recorded events')
    .action((file: string, expression: string[], opts: RawOptions) => run(import('./show.js').then((m) => m.show(file, expression, opts))));

  addRegressCommands(program, run);
  addExplainCommand(program, run);
  addMergeCommand(program, run, argv);

  program.command('profiles')
    .description('list the profiles --profile takes: built in, and those under ~/.config/pktpath/profiles')
    .action(() => run(import('./profiles-list.js').then((m) => m.listProfiles(traceOptions(program)))));

  program.command('datapath')
    .description('list the BPF programs (tc, XDP, netfilter, cgroup) and nft base chains on the packet path of each traced namespace')
    .option('--json', 'one JSON object (schema/datapath.v1.json)')
    .option('--filter-netns <netns>', 'only this network namespace')
    .option('--all', 'list devices without programs too')
    .action((opts: import('./datapath.js').DatapathOptions) => run(import('./datapath.js').then((m) => m.datapath(opts))));

  program.command('cleanup')
    .description('remove what pktpath sessions that are gone left in every traced namespace: nft trace tables (--output-nft), ' +
      'tc filters (kernels without tcx)')
    .addOption(new Option('--after <pid>', 'a session\'s watchdog: wait for it to end first').hideHelp())
    .action((opts: import('./cleanup.js').CleanupOptions) => run(import('./cleanup.js').then((m) => m.cleanup(opts))));

  program.command('doctor')
    .description('what this kernel allows, and what pktpath will use')
    .action(() => run(import('./doctor.js').then((m) => m.doctor())));

  program.command('demo')
    .description('make two network namespaces, send ping, UDP and TCP between them, and trace it')
    .action(() => run(import('./demo.js').then((m) => m.demo())));
  return program;
}

/** The commands whose options a profile sets. */
const PROFILE_COMMANDS = new Set(['list', 'record']);

/** The long options of a command, as a profile may name them. */
export function traceOptions(cmd: Command): KnownOptions {
  return new Map(cmd.options.filter((o) => o.long && o.long !== '--profile')
    .map((o) => [o.long!.slice(2), { takesValue: o.required || o.optional }]));
}

/** argv with its --profile options expanded, for the trace, `list` and `record`. */
export function withProfiles(program: Command, argv: string[]): string[] {
  if (!argv.slice(2).some((a) => a === '--profile' || a.startsWith('--profile='))) return argv;
  const sub = argv[2] !== undefined && PROFILE_COMMANDS.has(argv[2]) ? program.commands.find((c) => c.name() === argv[2])! : null;
  if (sub === null && program.commands.some((c) => c.name() === argv[2])) return argv;
  const known = traceOptions(sub ?? program);
  return expandProfiles(argv, sub ? 3 : 2, (ref) => loadProfile(ref, known));
}

export function describeError(e: unknown): { code: number; message: string } {
  if (e instanceof UsageError || e instanceof InputFileError || e instanceof OutputPathError) return { code: EXIT_USAGE, message: e.message };
  if (e instanceof BpfError) return { code: EXIT_FAILURE, message: e.message };
  return { code: EXIT_FAILURE, message: (e as Error)?.message ?? String(e) };
}

export function main(argv: string[]): void {
  const program = buildProgram((p) => {
    p.then((code) => process.exit(code), (e: unknown) => {
      const { code, message } = describeError(e);
      fail(code, message);
    });
  }, argv);
  try {
    program.parse(withProfiles(program, argv));
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) process.exit(EXIT_OK);
      process.exit(EXIT_USAGE);
    }
    const { code, message } = describeError(e);
    fail(code, message);
  }
}
