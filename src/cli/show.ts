/**
 * `pktpath show TRACE [expression] [options]`: a recorded JSON-lines trace
 * through the sinks of a live one — text with any columns, `--group-by`
 * journeys, JSON again, pcapng from captured bytes — narrowed by the same
 * filters, applied to the recorded events. It streams: memory stays bounded
 * whatever the trace's size, and nothing is dropped (it waits for its output).
 */
import { FilterError } from '../filter/pcap.js';
import { parseJsonTime, eventFromJson } from '../output/json-read.js';
import { createSinks } from '../output/create.js';
import { RecordedTime } from '../output/packets.js';
import { JsonSink } from '../output/line-sinks.js';
import { TraceFileError, checkTraceFile, readTrace } from '../regress/records.js';
import { type NetnsSettings, settingsFromJson } from '../output/settings.js';
import { compileSelection } from './show-select.js';
import { type RawOptions, buildConfig } from './trace-config.js';
import { EXIT_OK } from './exit.js';
import { UsageError } from './values.js';

/** Events handed to the sinks between two waits for the output to drain. */
const DRAIN_EVERY = 4096;

/** Whether the trace's header says `pktpath merge` made it. */
async function isMerged(file: string): Promise<boolean> {
  for await (const line of readTrace(file)) return line.kind === 'header' && line.record.merged !== undefined;
  return false;
}

export async function show(file: string, expression: string[], opts: RawOptions): Promise<number> {
  const cfg = buildConfig(opts, expression);
  let select;
  try {
    select = compileSelection({
      expression: cfg.filter.expression,
      netns: cfg.filter.netns,
      pods: cfg.filter.pods,
      ifname: cfg.filter.ifname,
      mark: cfg.filter.mark,
      func: cfg.attach.filterFunc,
    });
  } catch (e) {
    if (e instanceof FilterError) throw new UsageError(e.message);
    throw e;
  }
  checkTraceFile(file);
  // A merged trace's events carry their node: a NODE column, in lines and grouped blocks.
  if (await isMerged(file)) cfg.output.node = true;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const time = new RecordedTime();
  const { sinks, main, onClosed, drain } = createSinks(cfg.output, (line) => say(`pktpath: ${line}`),
    { timing: time, inputs: [{ flag: 'TRACE', path: file }, ...cfg.inputs] });
  let closed = false;
  onClosed(() => (closed = true));
  const limit = cfg.output.limitLines;
  let startNs: bigint | null = null;
  let read = 0;
  let shown = 0;
  /** Each namespace's last settings, for the change lines of --output-settings. */
  const settingsSeen = new Map<number, NetnsSettings>();
  try {
    for await (const line of readTrace(file)) {
      if (closed) break;
      switch (line.kind) {
        case 'header':
          startNs = parseJsonTime(line.record.time);
          if (main instanceof JsonSink) main.header(line.record);
          break;
        case 'lost': {
          const timeNs = parseJsonTime(line.time) ?? 0n;
          const notice = { timeNs, count: line.count, total: line.total, ...(line.source ? { source: line.source } : {}) };
          for (const s of sinks) s.lost(notice);
          break;
        }
        case 'settings': {
          let r;
          try {
            r = settingsFromJson(line.record);
          } catch (err) {
            throw new TraceFileError(file, line.line, (err as Error).message);
          }
          const notice = { ...r, previous: settingsSeen.get(r.netns) ?? null };
          settingsSeen.set(r.netns, r.settings);
          for (const s of sinks) s.settings?.(notice);
          break;
        }
        case 'event': {
          read++;
          let e;
          try {
            e = eventFromJson(line.record, startNs ?? (startNs = parseJsonTime(line.record.time) ?? 0n));
          } catch (err) {
            throw new TraceFileError(file, line.line, (err as Error).message);
          }
          time.advance(e.timeNs);
          if (!select(e)) break;
          for (const s of sinks) s.event(e);
          shown++;
          if (shown % DRAIN_EVERY === 0) await drain();
          break;
        }
        default:
          throw new TraceFileError(file, line.line, 'a normalised trace: `pktpath show` renders traces as recorded ' +
            '(--output-json, --output-json-file, pktpath record)');
      }
      if (limit > 0 && shown >= limit) break;
    }
  } finally {
    await Promise.all(sinks.map((s) => s.close()));
  }
  say(`pktpath: ${shown} of ${read} events shown`);
  return EXIT_OK;
}
