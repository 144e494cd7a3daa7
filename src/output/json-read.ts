/**
 * JSON lines back into events: the inverse of src/output/json.ts, so a
 * recorded trace (`--output-json`, `pktpath record`) goes through the same
 * sinks as a live one (`pktpath show`); each section's inverse sits beside its
 * JSON form (ct.ts, verdict.ts, nft.ts, tuple.ts, and the optional sections'
 * modules, through their registry). Every field the JSON carries comes
 * back; what it does not carry (the time since the trace started) is made
 * from the first event read.
 */
import { ctFromJson } from './ct.js';
import type { TraceEvent } from './event.js';
import type { JsonPacket, JsonRecord } from './json.js';
import { nftFromJson } from './nft.js';
import { sectionsFromJson } from './sections/registry.js';
import { tupleFromJson } from './tuple.js';
import { verdictFromJson } from './verdict.js';

// Years past 9999 (and before 0) as toISOString writes them: six digits and a sign.
const TIME = /^((?:\d{4}|[+-]\d{6})-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/;

/** `2026-12-03T07:07:27.123456789Z` → nanoseconds since the epoch; null when it is not such a time. */
export function parseJsonTime(text: string): bigint | null {
  const m = TIME.exec(text);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '0').padEnd(9, '0'));
}

function packetFromJson(p: JsonPacket): TraceEvent['packet'] {
  const data = Buffer.from(p.data, 'base64');
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), origLen: p.orig_len, l2: p.l2 };
}

/** `comm:pid` → comm (a comm may itself hold a colon). */
function commOf(process: string, pid: number): string {
  const suffix = ':' + pid;
  return process.endsWith(suffix) ? process.slice(0, -suffix.length) : process;
}

/** `name:ifindex` → name; '' when the record has the ifindex alone. */
function ifnameOf(iface: string, ifindex: number): string {
  const suffix = ':' + ifindex;
  return iface.endsWith(suffix) ? iface.slice(0, -suffix.length) : '';
}

/**
 * The event a JSON record was written from. `startNs` is the wall time the
 * trace started at (for --timestamp relative): the first event's, when the
 * reader knows no better. Throws when the time is not one pktpath writes.
 */
export function eventFromJson(r: JsonRecord, startNs: bigint): TraceEvent {
  const timeNs = parseJsonTime(r.time);
  if (timeNs === null) throw new Error(`time ${JSON.stringify(r.time)} is not a UTC time`);
  const e: TraceEvent = {
    timeNs,
    sinceStartNs: timeNs - startNs,
    skb: BigInt(r.skb),
    cpu: r.cpu,
    pid: r.pid,
    comm: commOf(r.process, r.pid),
    netns: r.netns,
    netnsName: r.netns_name,
    mark: r.mark,
    ifindex: r.ifindex,
    ifname: ifnameOf(r.iface, r.ifindex),
    protocol: r.proto,
    mtu: r.mtu,
    len: r.len,
    // Absent fields are null, as the encoders expect (JSON written by other tools may leave them out).
    tuple: r.tuple == null ? null : tupleFromJson(r.tuple),
    func: r.func,
    probe: { type: r.probe.type, name: r.probe.name },
    dropReason: r.drop_reason ?? null,
    caller: r.caller ?? null,
    stack: r.stack ?? null,
  };
  if (r.tuple_before) e.tupleBefore = tupleFromJson(r.tuple_before);
  if (r.pod) e.pod = { namespace: r.pod.namespace, name: r.pod.name, uid: r.pod.uid };
  if (r.vlan) e.vlan = r.vlan;
  if (r.ct) e.ct = ctFromJson(r.ct);
  if (r.verdict) e.verdict = verdictFromJson(r.verdict);
  if (r.nft) e.nft = nftFromJson(r.nft);
  if (r.packet) e.packet = packetFromJson(r.packet);
  if (r.node !== undefined) e.node = r.node;
  if (r.journey !== undefined) e.journey = r.journey;
  sectionsFromJson(r, e as unknown as Record<string, unknown>);
  return e;
}
