/** What the output pipeline is asked to produce: the options every sink is built from (parsed in src/cli). */

export type TimestampMode = 'none' | 'current' | 'relative' | 'absolute';
export const TIMESTAMP_MODES: readonly TimestampMode[] = ['none', 'current', 'relative', 'absolute'];

export type ColorMode = 'auto' | 'always' | 'never';
export const COLOR_MODES: readonly ColorMode[] = ['auto', 'always', 'never'];

export type GroupBy = 'skb' | 'ct';
export const GROUP_BY: readonly GroupBy[] = ['skb', 'ct'];

export const DEFAULT_MAX_BACKUPS = 5;

export interface OutputFileOptions {
  /** Rotate --output-file before it passes this many bytes; null: never. */
  maxSize: number | null;
  maxBackups: number;
  /** Rotated files older than this many days are deleted; 0: kept whatever their age. */
  maxAgeDays: number;
  /** Rotated files are gzipped. */
  compress: boolean;
  /** pcapng file for packet bytes; null: none. */
  pcap: string | null;
  /** JSON lines written beside the main output (--output-json-file); null: none. */
  jsonFile: string | null;
  /** Bytes of each packet captured and written. */
  snaplen: number;
  groupBy: GroupBy | null;
  /** Replace existing output files (--force); else an existing file is refused. */
  force: boolean;
}

export interface OutputConfig {
  tuple: boolean;
  meta: boolean;
  stack: boolean;
  caller: boolean;
  tcpFlags: boolean;
  /** --output-ct: conntrack state in text lines (JSON carries it whenever known). */
  ct: boolean;
  /** --output-nft: nft rule evaluations of the traced packets (nftables' own tracing). */
  nft: boolean;
  /** --output-settings: the traced namespaces' settings in text, at the start and at each change (JSON carries them always). */
  settings?: boolean;
  /** --output-netns-names: namespace names in place of inodes in text. */
  netnsNames: boolean;
  /** --netns-names-max-length: names in text cut to this many characters (0: whole). */
  netnsNamesMax?: number;
  /** A NODE column in text and grouped blocks: `pktpath show` of a merged trace sets it. */
  node?: boolean;
  /** --output-skb, --output-skb-shared-info, --output-skb-cb. */
  dump: { skb: boolean; sharedInfo: boolean; cb: boolean; room?: { skb: number; sharedInfo: number } };
  /** The values of the sections' options (src/output/sections/registry.ts, sectionValues), by option name. */
  sectionValues: Record<string, unknown>;
  /** The optional sections asked for, by their keys on TraceEvent (src/output/sections/registry.ts). */
  sections: string[];
  /** --output-neigh-all: every neighbour event of the traced namespaces passes, whatever the filter. */
  neighAll?: boolean;
  /** --output-packet: packet bytes captured into the JSON records. */
  packet: boolean;
  json: boolean;
  file: string | null;
  limitLines: number;
  timestamp: TimestampMode;
  color: ColorMode;
  /** Rotation, pcapng, grouping. */
  files: OutputFileOptions;
}
