/**
 * The end-of-trace summary for stderr: totals, events per observation point
 * (most first) and drops per reason, as cli-table3 tables.
 */
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import { escapeText } from './escape.js';
import { stylesFor } from './paint.js';

/** cli-table3 costs every start ~10 ms to import: it is loaded for the first summary table. */
const loadTable = (): typeof TableType => createRequire(import.meta.url)('cli-table3') as typeof TableType;

/** What a finished trace session reports. */
export interface TraceSummary {
  events: number;
  lost: number;
  /** Observation points attached. */
  attached: number;
  attachMs: number;
  durationMs: number;
  stoppedBy: string;
  perPoint: Map<string, number>;
  drops: Map<string, number>;
  /** Drops by reason and where (the freeing caller, symbolized): `REASON\tlocation`. */
  dropSites?: Map<string, number>;
  /** kfree_skb with a reason on a normal path (not drops), by `REASON\tlocation`. */
  expectedFrees?: Map<string, number>;
  /** Namespaces and devices that came and went while tracing. */
  topology?: TopologyCounts;
  /** --output-nft: nftables' trace messages read, and lost (its trace sockets' queues full; exact, from the kernel's count). */
  nft?: { read: number; lost: number };
}

export interface TopologyCounts {
  namespacesAdded: number;
  namespacesRemoved: number;
  devicesAdded: number;
  devicesRemoved: number;
}

export interface SummaryOptions {
  color: boolean;
  /** Rows per table at most; the rest are added up in one row. Default 30. */
  maxRows?: number;
}

/** The one-line summary every run ends with (stderr). */
export function summaryLine(s: TraceSummary): string {
  const drops = [...s.drops].map(([r, n]) => `${escapeText(r)}×${n}`).join(', ');
  return `pktpath: ${s.events} events, ${s.lost} lost, in ${(s.durationMs / 1000).toFixed(1)} s` +
    (drops ? `; drops: ${drops}${s.lost > 0 ? ' (at least: records were lost)' : ''}` : '') +
    (s.nft ? `; nft trace events: ${s.nft.read} read, ${s.nft.lost} lost` : '');
}

/** `1234567` → `1,234,567`. */
export function groupDigits(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `850 ms`, `12.3 s`, `4 min 05 s`. */
export function formatRunTime(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** Entries by count, most first, then by name; past `max`, one row adds up the rest. */
function ranked(m: Map<string, number>, max: number, what: string): Array<[string, number]> {
  const rows = [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (rows.length <= max) return rows;
  const rest = rows.slice(max - 1);
  const sum = rest.reduce((n, [, c]) => n + c, 0);
  return [...rows.slice(0, max - 1), [`… ${rest.length} more ${what}`, sum]];
}

// No colour from cli-table3 itself: colour, when on, is chalk's, so it follows --color.
const STYLE = { head: [] as string[], border: [] as string[], compact: true };

function table(head: string[] | null, rows: string[][]): string {
  // The last column holds the counts.
  const aligns = rows[0] && rows[0].length > 2 ? ['left', 'left', 'right'] : ['left', 'right'];
  const t = new (loadTable())({ ...(head ? { head } : {}), style: STYLE, colAligns: aligns as Array<'left' | 'right'> });
  for (const r of rows) t.push(r);
  return t.toString();
}

/** The summary as tables, one after another, without a trailing newline; points, reasons and locations escaped. */
export function formatSummary(s: TraceSummary, opts: SummaryOptions): string {
  const st = stylesFor(opts.color);
  const max = Math.max(2, opts.maxRows ?? 30);

  const dropped = [...s.drops.values()].reduce((n, v) => n + v, 0);
  const totals: Array<[string, string]> = [
    ['events', groupDigits(s.events)],
    ['dropped packets', dropped > 0 ? st.drop(groupDigits(dropped)) : '0'],
    ['lost records', s.lost > 0 ? st.warn(groupDigits(s.lost)) : '0'],
    ...(s.nft ? [['lost nft trace events', s.nft.lost > 0 ? st.warn(groupDigits(s.nft.lost)) : '0'] as [string, string]] : []),
    ['run time', formatRunTime(s.durationMs)],
    ['points attached', groupDigits(s.attached)],
    ['attach time', formatRunTime(s.attachMs)],
    ['stopped by', s.stoppedBy],
  ];
  const parts = [table(null, totals)];

  if (s.perPoint.size > 0) {
    const rows = ranked(s.perPoint, max, 'points').map(([k, v]): [string, string] => [escapeText(k), groupDigits(v)]);
    parts.push(table([st.header('observation point'), st.header('events')], rows));
  }
  if (s.dropSites && s.dropSites.size > 0) {
    const rows = ranked(s.dropSites, max, 'drop sites').map(([k, v]): string[] => {
      const [reason, where] = k.split('\t');
      return [st.drop(escapeText(reason!)), escapeText(where ?? ''), groupDigits(v)];
    });
    parts.push(table([st.header('drop reason'), st.header('location'), st.header('packets')], rows));
  } else if (s.drops.size > 0) {
    const rows = ranked(s.drops, max, 'reasons').map(([k, v]): [string, string] => [st.drop(escapeText(k)), groupDigits(v)]);
    parts.push(table([st.header('drop reason'), st.header('packets')], rows));
  }
  if (s.lost > 0 && s.drops.size > 0) {
    parts.push(st.warn(`drop counts are lower bounds: ${groupDigits(s.lost)} records were lost, and the drops among them are not counted`));
  }
  if (s.expectedFrees && s.expectedFrees.size > 0) {
    const rows = ranked(s.expectedFrees, max, 'sites').map(([k, v]): string[] => {
      const [reason, where] = k.split('\t');
      return [escapeText(reason!), escapeText(where ?? ''), groupDigits(v)];
    });
    parts.push(table([st.header('normal frees with a reason (not drops)'), st.header('location'), st.header('packets')], rows));
  }
  return parts.join('\n');
}
