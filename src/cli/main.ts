/**
 * pktpath's command line: argv → TraceConfig → plan → session. Usage errors
 * exit 2 with one line, runtime failures exit 1, a normal stop exits 0.
 */
import { Command, CommanderError, Option } from 'commander';
import { BpfError } from '../bpf/errors.js';
import { missingPrivileges } from '../kernel/privileges.js';
import { gatherKernelView, ifacesOf } from '../kernel/view.js';
import { narrowView, planPointNames, planProbes } from '../plan/plan.js';
import { TraceSession, type Summary } from '../trace/session.js';
import { type RawOptions, type TraceConfig, UsageError, buildConfig } from './config.js';
import { activateFilter } from './filter.js';
import { addOutputFileOptions } from './output-options.js';
import { formatSummary } from '../output/summary.js';
import { colorFor, createSinks } from './output.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

function fail(code: number, message: string): never {
  process.stderr.write(`pktpath: ${message}\n`);
  process.exit(code);
}

function requirePrivileges(): void {
  const missing = missingPrivileges();
  if (missing) fail(EXIT_FAILURE, `needs root to load its probes (missing ${missing}); run it with sudo`);
}

function addTraceOptions(cmd: Command): Command {
  return addOutputFileOptions(cmd)
    .argument('[expression...]', 'pcap-filter expression, as tcpdump takes it (e.g. "tcp and dst port 80")')
    .option('--filter-src-ip <ip>', 'source IPv4/IPv6 address')
    .option('--filter-dst-ip <ip>', 'destination IPv4/IPv6 address')
    .option('--filter-ip <ip>', 'source or destination address')
    .option('--filter-proto <proto>', 'tcp, udp, icmp, icmp6, sctp or a protocol number')
    .option('--filter-src-port <port>', 'source port')
    .option('--filter-dst-port <port>', 'destination port')
    .option('--filter-port <port>', 'source or destination port')
    .option('--filter-func <regex>', 'observation points to attach (full-name match, e.g. "kfree_skb|tc:.*")')
    .option('--filter-netns <netns>', 'only this network namespace: /proc/PID/ns/net, /run/netns/NAME, NAME or inode:N')
    .option('--filter-ifname <name>', 'only packets on this device (in --filter-netns, else in the current namespace)')
    .option('--filter-mark <value[/mask]>', 'only packets whose skb mark matches')
    .option('--filter-track-skb', 'keep following a matched skb whatever its headers become (NAT, tunnels)')
    .option('--output-tuple', 'print the 5-tuple')
    .option('--output-meta', 'print netns, mark, interface, protocol, MTU and length')
    .option('--output-stack', 'print the kernel stack (at tracepoints)')
    .option('--output-caller', 'print the calling function where the point has one')
    .option('--output-tcp-flags', 'print TCP flags in the tuple')
    .option('--output-ct', 'print conntrack state, status and NAT where a point knows them (netfilter hooks, tc lookups)')
    .option('--output-json', 'write JSON lines (schema v1)')
    .option('--output-file <path>', 'write to a file instead of stdout')
    .option('--output-limit-lines <n>', 'stop after n events')
    .addOption(new Option('--timestamp <mode>', 'none, current, relative or absolute').default('none'))
    .addOption(new Option('--color <when>', 'auto, always or never').default('auto'))
    .addOption(new Option('--backend <name>', 'auto, tracepoint, kprobe, kprobe-multi or fentry').default('auto'))
    .option('--attach <families>', 'families to attach: tracepoints,tc,netfilter,funcs', 'tracepoints,tc,netfilter,funcs')
    .option('--ring-size <size>', 'ring buffer size (power of two)', '16M')
    .option('--duration <seconds>', 'stop after this many seconds');
}

/** Filter, kernel view and plan of a run; usage errors surface here, before anything is attached. */
function prepare(cfg: TraceConfig) {
  const { filter, notes } = activateFilter(cfg.filter);
  const kernel = narrowView(gatherKernelView(), filter, ifacesOf);
  const plan = planProbes(cfg, kernel);
  plan.notes.unshift(...notes);
  return { filter, kernel, plan };
}

export function summaryLine(s: Summary): string {
  const drops = [...s.drops].map(([r, n]) => `${r}×${n}`).join(', ');
  return `pktpath: ${s.events} events, ${s.lost} lost, in ${(s.durationMs / 1000).toFixed(1)} s` +
    (drops ? `; drops: ${drops}` : '');
}

async function trace(opts: RawOptions, expression: string[]): Promise<number> {
  const cfg = buildConfig(opts, expression);
  requirePrivileges();
  const { filter, kernel, plan } = prepare(cfg);
  for (const note of plan.notes) process.stderr.write(`pktpath: ${note}\n`);
  const { sinks, onClosed } = createSinks(cfg.output);
  const session = new TraceSession(cfg, plan, kernel, filter, sinks, { status: (l) => process.stderr.write(`${l}\n`) });
  onClosed(() => session.stop('output closed'));
  const onSignal = () => session.stop('signal');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const summary = await session.run();
  process.stderr.write(`${summaryLine(summary)}\n`);
  if (process.stderr.isTTY) {
    process.stderr.write(`${formatSummary(summary, { color: colorFor(cfg.output.color, true) })}\n`);
  }
  return EXIT_OK;
}

async function list(opts: RawOptions, expression: string[]): Promise<number> {
  const cfg = buildConfig(opts, expression);
  const { plan } = prepare(cfg);
  for (const name of planPointNames(plan)) process.stdout.write(`${name}\n`);
  for (const note of plan.notes) process.stderr.write(`pktpath: ${note}\n`);
  return EXIT_OK;
}

export function buildProgram(run: (p: Promise<number>) => void): Command {
  const program = addTraceOptions(new Command('pktpath'))
    .description('Trace the path of packets through the Linux kernel.')
    .version('0.1.0')
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
