/**
 * TraceConfig: what the user asked for, validated, as the contracts of the
 * layers below take it (the filter, the attach selection, the outputs).
 * Everything here is pure; each bad value becomes a UsageError with a
 * one-line message before anything touches the kernel.
 */
import { type FlagFilter, combineExpression } from '../filter/expression.js';
import { flagsToNft } from '../filter/nft-rules.js';
import type { NftCondition } from '../kernel/nftables.js';
import { parsePodSelector } from '../kernel/cri.js';
import { PORTED_NAMES, PORTED_PROTOCOLS } from '../decode/protocols.js';
import {
  COLOR_MODES, DEFAULT_MAX_BACKUPS, GROUP_BY, type OutputConfig, type OutputFileOptions, TIMESTAMP_MODES,
} from '../output/config.js';
import type { InputFile } from '../output/files.js';
import { DEFAULT_SNAPLEN, MAX_SNAPLEN } from '../output/pcapng.js';
import { SectionOptionError, askedSections, sectionValues } from '../output/sections/registry.js';
import { DEFAULT_DUMP_ROOM, MAX_DUMP_ROOM, MIN_DUMP_ROOM, dumpRoom } from '../output/sections/dump.js';
import { MIN_NETNS_NAME_CHARS } from '../output/text.js';
import { profileFilesRead } from './profiles.js';
import { type AttachSelection, BACKEND_CHOICES, FAMILIES, type Family, TC_DEVICE_CHOICES } from '../plan/plan.js';
import { TC_DIRECTIONS, tcPointName } from '../decode/points.js';
import {
  UsageError, parseByteSize, parseChoice, parseChoices, parseCount, parseIp, parseMark, parsePort, parseProto, parseRange,
  parseFunctionNames, parseModules, parseRegex, parseRingSize,
} from './values.js';

export interface FilterConfig {
  /** tcpdump expression (the user's, ANDed with the classic flags'); '' for none. */
  expression: string;
  /** --filter-netns as given, each a path, a name under /run/netns, or inode:N; empty for none. */
  netns: string[];
  /** --filter-pod: the pods (NAMESPACE/NAME) whose namespaces are traced; empty for none. */
  pods: Array<{ namespace: string; name: string }>;
  /** --cri-socket: the container runtime's socket; null for the default ones. */
  criSocket: string | null;
  /** --filter-ifname, resolved in that namespace (or pktpath's own). */
  ifname: string | null;
  mark: { value: number; mask: number } | null;
  /** --filter-skb-expr as given (compiled against BTF when the filter is activated). */
  skbExpr: string | null;
  /** --filter-xdp-expr as given: the same language on the xdp_buff of traced XDP programs (src/cli/xdp-expr.ts). */
  xdpExpr: string | null;
  /** --filter-tunnel-pcap-l2/-l3: tcpdump expressions on a tunnel's inner frame and inner packet. */
  inner: { l2: string | null; l3: string | null };
  trackSkb: boolean;
  /** --filter-track-skb-by-stackid (it follows with --filter-track-skb): skbs seen on a followed skb's kernel stack are followed too. */
  trackStack: boolean;
  /**
   * The filter as nft conditions (one per rule), for --output-nft's trace
   * table; null when a tcpdump expression says more than nft can be told.
   */
  nftMatch: NftCondition[][] | null;
}

export interface TraceConfig {
  filter: FilterConfig;
  attach: AttachSelection;
  output: OutputConfig;
  /** Ring buffer size in bytes (power of two). */
  ringSize: number;
  /** Stop after this many seconds (0: until a signal). */
  duration: number;
  /** Created once everything is attached, removed on exit (--ready-file). */
  readyFile: string | null;
  /** --kernel-btf: a BTF file used instead of /sys/kernel/btf/vmlinux. */
  kernelBtf: string | null;
  /** The files the run reads (--kernel-btf, profile files): no output may be one of them. */
  inputs: InputFile[];
  /** --explain: why each journey that did not arrive did not, after it. */
  explain: boolean;
  /** --debug: libbpf's messages and every verifier log on stderr. */
  debug: boolean;
}

/**
 * What --explain reads beyond the events, turned on with it: the route and
 * neighbour sections (--output-route, --output-neigh), and every neighbour
 * change of the traced namespaces whatever the filter (a next hop is not the
 * packet's address). Settings are followed for it too (sessionOptions).
 */
export const EXPLAIN_READS: Readonly<Record<string, true>> = { outputRoute: true, outputNeigh: true, outputNeighAll: true };

/** The file options as commander hands them over (with the flags they depend on). */
export interface RawOutputFileOptions {
  outputFile?: string;
  outputJson?: boolean;
  outputFileMaxSize?: string;
  outputFileMaxBackups?: string;
  outputFileMaxAge?: string;
  outputFileCompress?: boolean;
  outputPcap?: string;
  outputJsonFile?: string;
  pcapSnaplen?: string;
  force?: boolean;
  groupBy?: string;
}

/** Raw option values as commander hands them over. */
export interface RawOptions extends RawOutputFileOptions {
  filterSrcIp?: string;
  filterDstIp?: string;
  filterIp?: string;
  filterProto?: string;
  filterSrcPort?: string;
  filterDstPort?: string;
  filterPort?: string;
  filterFunc?: string;
  backend?: string;
  kmods?: string;
  allKmods?: boolean;
  /** `list --funcs` */
  funcs?: boolean;
  filterNetns?: string[];
  filterPod?: string[];
  criSocket?: string;
  filterIfname?: string;
  filterMark?: string;
  filterSkbExpr?: string;
  filterTrackSkb?: boolean;
  filterTrackSkbByStackid?: boolean;
  filterNonSkbFuncs?: string | string[];
  filterTraceTc?: boolean;
  filterTraceXdp?: boolean;
  filterTrackBpfHelpers?: boolean;
  outputTuple?: boolean;
  outputMeta?: boolean;
  outputStack?: boolean;
  outputCaller?: boolean;
  outputTcpFlags?: boolean;
  outputCt?: boolean;
  outputNft?: boolean;
  outputSettings?: boolean;
  outputPacket?: boolean;
  explain?: boolean;
  outputNetnsNames?: boolean;
  outputSkb?: boolean;
  outputSkbSharedInfo?: boolean;
  outputSkbCb?: boolean;
  filterTunnelPcapL2?: string;
  filterTunnelPcapL3?: string;
  outputLimitLines?: string;
  timestamp?: string;
  color?: string;
  attach?: string;
  tcDevices?: string;
  ringSize?: string;
  duration?: string;
  readyFile?: string;
  kernelBtf?: string;
  // pwru's tuning flags
  setPercpuBuf?: string;
  netnsNamesMaxLength?: string;
  filterKprobeBatch?: string;
  debug?: boolean;
  filterXdpExpr?: string;
}

const MAX_BACKUPS = 1000;
/** Ten years: past it an age limit means none. */
const MAX_AGE_DAYS = 3650;

/** Below this a file would rotate every few lines. */
const MIN_FILE_SIZE = 4096;

/** --output-file-max-size: a bare number is in megabytes, as pwru's; a unit says otherwise (4K, 1.5G). */
export function parseFileSize(flag: string, text: string): number {
  const bare = /^\s*\d+(\.\d+)?\s*$/.test(text);
  const bytes = bare ? Math.floor(Number(text) * 2 ** 20) : parseByteSize(flag, text);
  if (bytes < MIN_FILE_SIZE) {
    throw new UsageError(`${flag}: '${text}' is below the smallest size, 4K (a bare number is in megabytes, as in pwru)`);
  }
  return bytes;
}

export function parseOutputFileOptions(raw: RawOutputFileOptions): OutputFileOptions {
  const file = raw.outputFile ?? null;
  let maxSize: number | null = null;
  if (raw.outputFileMaxSize !== undefined) {
    maxSize = parseFileSize('--output-file-max-size', raw.outputFileMaxSize);
    if (file === null) throw new UsageError('--output-file-max-size: rotation needs --output-file');
  }
  if (raw.outputFileMaxBackups !== undefined && file === null) {
    throw new UsageError('--output-file-max-backups: rotation needs --output-file');
  }
  const maxBackups = raw.outputFileMaxBackups === undefined
    ? DEFAULT_MAX_BACKUPS
    : parseRange('--output-file-max-backups', raw.outputFileMaxBackups, 0, MAX_BACKUPS);

  const maxAgeDays = raw.outputFileMaxAge === undefined ? 0 : parseRange('--output-file-max-age', raw.outputFileMaxAge, 1, MAX_AGE_DAYS);
  if (raw.outputFileMaxAge !== undefined && maxSize === null) {
    throw new UsageError('--output-file-max-age: applies to rotated files: it needs --output-file-max-size');
  }
  const compress = raw.outputFileCompress === true;
  if (compress && maxSize === null) throw new UsageError('--output-file-compress: compresses rotated files: it needs --output-file-max-size');

  let pcap: string | null = null;
  if (raw.outputPcap !== undefined) {
    pcap = raw.outputPcap.trim();
    if (pcap === '') throw new UsageError('--output-pcap: needs a file name');
    if (pcap === file) throw new UsageError(`--output-pcap: '${pcap}' is also the --output-file`);
  }
  let jsonFile: string | null = null;
  if (raw.outputJsonFile !== undefined) {
    jsonFile = raw.outputJsonFile.trim();
    if (jsonFile === '') throw new UsageError('--output-json-file: needs a file name');
    if (jsonFile === file || jsonFile === pcap) throw new UsageError(`--output-json-file: '${jsonFile}' is also another output`);
  }
  const snaplen = raw.pcapSnaplen === undefined ? DEFAULT_SNAPLEN : parseRange('--pcap-snaplen', raw.pcapSnaplen, 1, MAX_SNAPLEN);

  const groupBy = raw.groupBy === undefined ? null : parseChoice('--group-by', raw.groupBy.trim().toLowerCase(), GROUP_BY);
  if (groupBy !== null && raw.outputJson === true) {
    throw new UsageError('--group-by: prints text blocks; it does not combine with --output-json');
  }
  return { maxSize, maxBackups, maxAgeDays, compress, pcap, jsonFile, snaplen, groupBy, force: raw.force === true };
}

/** `skb->mark,skb->hash`: pwru's list, at most 4. */
/** What `step` finds wrong with a section's option, as a usage error. */
export function usage<T>(step: () => T): T {
  try {
    return step();
  } catch (e) {
    if (e instanceof SectionOptionError) throw new UsageError(e.message);
    throw e;
  }
}

function nonEmptyExpr(flag: string, text: string): string {
  if (text.trim() === '') throw new UsageError(`${flag}: the expression is empty`);
  return text;
}

function nonEmptyPath(flag: string, text: string): string {
  if (text.trim() === '') throw new UsageError(`${flag}: the path is empty`);
  return text;
}

export function buildConfig(raw: RawOptions, expression: string[]): TraceConfig {
  const o: RawOptions = raw.explain ? { ...EXPLAIN_READS, ...raw } : raw;
  const filter: FlagFilter = {};
  if (o.filterSrcIp !== undefined) filter.srcIp = parseIp('--filter-src-ip', o.filterSrcIp);
  if (o.filterDstIp !== undefined) filter.dstIp = parseIp('--filter-dst-ip', o.filterDstIp);
  if (o.filterIp !== undefined) filter.ip = parseIp('--filter-ip', o.filterIp);
  if (o.filterProto !== undefined) filter.proto = parseProto('--filter-proto', o.filterProto);
  if (o.filterSrcPort !== undefined) filter.srcPort = parsePort('--filter-src-port', o.filterSrcPort);
  if (o.filterDstPort !== undefined) filter.dstPort = parsePort('--filter-dst-port', o.filterDstPort);
  if (o.filterPort !== undefined) filter.port = parsePort('--filter-port', o.filterPort);
  const filterFunc = o.filterFunc !== undefined ? parseRegex('--filter-func', o.filterFunc, false) : null;
  const l3s = [filter.srcIp, filter.dstIp, filter.ip].filter(Boolean).map((a) => a!.l3);
  if (new Set(l3s).size > 1) throw new UsageError('the address filters mix IPv4 and IPv6: no packet can match');
  if ((filter.srcPort || filter.dstPort || filter.port) && filter.proto !== undefined &&
      !PORTED_PROTOCOLS.has(filter.proto)) {
    throw new UsageError(`port filters need a protocol with ports (${PORTED_NAMES})`);
  }

  const output: OutputConfig = {
    tuple: !!o.outputTuple,
    meta: !!o.outputMeta,
    stack: !!o.outputStack,
    caller: !!o.outputCaller,
    tcpFlags: !!o.outputTcpFlags,
    ct: !!o.outputCt,
    nft: !!o.outputNft,
    settings: !!o.outputSettings,
    packet: !!o.outputPacket,
    netnsNames: !!o.outputNetnsNames,
    netnsNamesMax: parseNetnsNamesMax(o.netnsNamesMaxLength),
    sections: askedSections(o as Record<string, unknown>),
    neighAll: !!(o as Record<string, unknown>).outputNeighAll,
    dump: {
      skb: !!o.outputSkb, sharedInfo: !!o.outputSkbSharedInfo, cb: !!o.outputSkbCb,
      room: o.setPercpuBuf === undefined ? DEFAULT_DUMP_ROOM : dumpRoom(parseRange('--set-percpu-buf', o.setPercpuBuf, MIN_DUMP_ROOM, MAX_DUMP_ROOM)),
    },
    sectionValues: usage(() => sectionValues(o as Record<string, unknown>)),
    json: !!o.outputJson,
    file: o.outputFile ?? null,
    limitLines: o.outputLimitLines !== undefined ? parseCount('--output-limit-lines', o.outputLimitLines) : 0,
    timestamp: parseChoice('--timestamp', o.timestamp ?? 'none', TIMESTAMP_MODES),
    color: parseChoice('--color', o.color ?? 'auto', COLOR_MODES),
    files: parseOutputFileOptions(o),
  };
  if (output.file !== null && output.file.trim() === '') throw new UsageError('--output-file: the path is empty');

  if (o.filterIfname !== undefined && !/^[^\s/]{1,15}$/.test(o.filterIfname)) {
    throw new UsageError(`--filter-ifname: '${o.filterIfname}' is not an interface name`);
  }
  // A profile may give one as a string.
  const netns = [o.filterNetns ?? []].flat().map((n) => n.trim());
  if (netns.some((n) => n === '')) throw new UsageError('--filter-netns: empty');
  const pods = [o.filterPod ?? []].flat().map((p) => {
    try {
      return parsePodSelector(p.trim());
    } catch (e) {
      throw new UsageError(`--filter-pod: ${(e as Error).message}`);
    }
  });

  const mark = o.filterMark !== undefined ? parseMark('--filter-mark', o.filterMark) : null;
  return {
    filter: {
      expression: combineExpression(expression, filter),
      netns,
      pods,
      criSocket: o.criSocket !== undefined ? nonEmptyPath('--cri-socket', o.criSocket) : null,
      ifname: o.filterIfname ?? null,
      mark,
      skbExpr: o.filterSkbExpr !== undefined ? nonEmptyExpr('--filter-skb-expr', o.filterSkbExpr) : null,
      xdpExpr: o.filterXdpExpr !== undefined ? nonEmptyExpr('--filter-xdp-expr', o.filterXdpExpr) : null,
      inner: {
        l2: o.filterTunnelPcapL2 !== undefined ? nonEmptyExpr('--filter-tunnel-pcap-l2', o.filterTunnelPcapL2) : null,
        l3: o.filterTunnelPcapL3 !== undefined ? nonEmptyExpr('--filter-tunnel-pcap-l3', o.filterTunnelPcapL3) : null,
      },
      trackSkb: !!o.filterTrackSkb || !!o.filterTrackSkbByStackid,
      trackStack: !!o.filterTrackSkbByStackid,
      nftMatch: expression.join(' ').trim() === '' ? flagsToNft(filter, mark) : null,
    },
    attach: {
      families: parseFamilies(o),
      filterFunc,
      afterNat: output.ct,
      backend: o.backend !== undefined ? parseChoice('--backend', o.backend, BACKEND_CHOICES) : 'auto',
      functionsAsked: o.backend !== undefined || (o.attach ?? '').split(',').some((f) => f.trim() === 'functions'),
      tracePrograms: new Set([...(o.filterTraceTc ? ['tc' as const] : []), ...(o.filterTraceXdp ? ['xdp' as const] : [])]),
      trackBpfHelpers: parseTrackHelpers(o, output.sections),
      trackSkb: !!o.filterTrackSkb || !!o.filterTrackSkbByStackid,
      nonSkbFuncs: o.filterNonSkbFuncs !== undefined && [o.filterNonSkbFuncs].flat().length > 0 ? parseFunctionNames('--filter-non-skb-funcs', o.filterNonSkbFuncs) : [],
      decisions: { route: output.sections.includes('route'), neigh: output.sections.includes('neigh') },
      tcDevices: parseChoice('--tc-devices', o.tcDevices ?? 'auto', TC_DEVICE_CHOICES),
      tcAsked: (o.attach ?? '').split(',').some((f) => f.trim() === 'tc') || (filterFunc !== null && TC_DIRECTIONS.some((d) => filterFunc.test(tcPointName(d)))),
      kprobeBatch: o.filterKprobeBatch !== undefined ? parseRange('--filter-kprobe-batch', o.filterKprobeBatch, 1, MAX_KPROBE_BATCH) : null,
      kmods: o.allKmods ? 'all' : o.kmods !== undefined ? parseModules('--kmods', o.kmods) : [],
    },
    output,
    ringSize: parseRingSize('--ring-size', o.ringSize ?? '16M'),
    duration: o.duration !== undefined ? parseCount('--duration', o.duration) : 0,
    readyFile: o.readyFile !== undefined ? nonEmptyPath('--ready-file', o.readyFile) : null,
    kernelBtf: o.kernelBtf !== undefined ? nonEmptyPath('--kernel-btf', o.kernelBtf) : null,
    inputs: [
      ...(o.kernelBtf !== undefined ? [{ flag: '--kernel-btf', path: o.kernelBtf }] : []),
      ...profileFilesRead().map((path) => ({ flag: '--profile', path })),
    ],
    explain: !!o.explain,
    debug: !!o.debug,
  };
}

/**
 * --attach: the families, or `none` — no kernel family, the mode that traces
 * only BPF programs (--filter-trace-tc, --filter-trace-xdp), as pwru#394 asks.
 */
export function parseFamilies(o: Pick<RawOptions, 'attach' | 'filterTraceTc' | 'filterTraceXdp'>): Set<Family> {
  if (o.attach?.trim() !== 'none') return parseChoices('--attach', o.attach ?? FAMILIES.join(','), FAMILIES);
  if (!o.filterTraceTc && !o.filterTraceXdp) {
    throw new UsageError('--attach none: traces only BPF programs: give --filter-trace-tc or --filter-trace-xdp (or name the families to attach)');
  }
  return new Set();
}

/** --filter-track-bpf-helpers: helper calls of the programs --filter-trace-tc/-xdp trace; --output-bpfmap: their map operations. */
export function parseTrackHelpers(o: Pick<RawOptions, 'filterTrackBpfHelpers' | 'filterTraceTc' | 'filterTraceXdp'>, sections: readonly string[]): boolean {
  const track = !!o.filterTrackBpfHelpers;
  if (sections.includes('bpfmap') && !track) {
    throw new UsageError('--output-bpfmap: map operations are seen as helper calls of traced programs: add --filter-track-bpf-helpers');
  }
  if (track && !o.filterTraceTc && !o.filterTraceXdp) {
    throw new UsageError('--filter-track-bpf-helpers: follows the helper calls of the programs --filter-trace-tc/--filter-trace-xdp trace: add one of them');
  }
  return track;
}

/** A kprobe batch past this would hold off signals for seconds. */
const MAX_KPROBE_BATCH = 4096;

/** --netns-names-max-length: pwru's uint8, raised to its floor of 10 as pwru does; 0 (not given) keeps names whole. */
export function parseNetnsNamesMax(text: string | undefined): number {
  if (text === undefined) return 0;
  return Math.max(MIN_NETNS_NAME_CHARS, parseRange('--netns-names-max-length', text, 1, 255));
}
