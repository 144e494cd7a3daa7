/**
 * Why one journey did not arrive: its records (events, nftables' trace of
 * it, route lookups made for it) and what the context knows (settings,
 * neighbours) → a cause, a sentence, and the evidence, each line naming the
 * time of the record it rests on. The most specific cause wins: a rule or a
 * program that dropped it by name, then what the kernel's drop reason and
 * the settings say, then the drop reason alone; a journey that was neither
 * dropped nor freed explains itself only where it stopped mid-path.
 * docs/EXPLAIN.md tells each cause and what cannot be told.
 */
import { FREEING_POINTS } from '../../decode/points.js';
import type { Journey } from '../journey-shapes.js';
import { tupleText } from '../journeys.js';
import { ExplainContext, deviceWithLladdr, forwardingOn, holderOf, ipv4Value, netnsText, ownsAddress, routerTowards, rpFilterOn } from './context.js';
import type { Cause, Evidence, ExplainEvent, NeighSection, RouteSection } from './inputs.js';

export interface Finding {
  cause: Cause;
  sentence: string;
  evidence: Evidence[];
}

const deviceOf = (r: ExplainEvent) => r.iface.replace(/:\d+$/, '');
/** The namespace, and in a merged trace its node: `ns-b`, `ns-b on node2`. */
const nsOf = (r: ExplainEvent) => `${netnsText(r.netns_name, r.netns)}${r.node !== undefined ? ` on ${r.node}` : ''}`;
const placeOf = (r: ExplainEvent) => `${deviceOf(r) ? `${deviceOf(r)} in ` : ''}${nsOf(r)}`;
/** One namespace of one node: inodes are a node's own (a merged trace's nodes may repeat them). */
const samePlace = (a: ExplainEvent, b: ExplainEvent) => a.netns === b.netns && a.node === b.node;
const said = (r: ExplainEvent, text: string): Evidence => ({ text, time: r.time });
const callerOf = (r: ExplainEvent) => (r.caller ?? '').replace(/\+0x[0-9a-f]+.*$/, '');

/** The drop event's own line: `kfree_skb at veth-b in ns-b: reason NO_SOCKET (by __udp4_lib_rcv)`. */
function dropLine(r: ExplainEvent): Evidence {
  return said(r, `${r.func} at ${placeOf(r)}: reason ${r.drop_reason ?? 'none'}${callerOf(r) ? ` (by ${callerOf(r)})` : ''}`);
}

/** Points a packet passes on its way in, through or out, but where it does not stop: a journey last seen there is unfinished. */
const MID_PATH = /^(tc:(ingress|egress)|netif_receive_skb|netif_rx|nf:ipv[46]:(pre_routing|forward|post_routing)|net_dev_queue)$/;
/** Points where a namespace sends a packet on: it left the namespace it was in. */
const LEAVING = /^(nf:ipv[46]:(forward|post_routing)|tc:egress|net_dev_queue|net_dev_start_xmit|net_dev_xmit)$/;
/** Points where a packet arrives in a namespace. */
const ARRIVING = /^(tc:ingress|netif_receive_skb|netif_rx|nf:ipv[46]:pre_routing)$/;

const REASON_NO_ROUTE = new Set(['IP_NOROUTE', 'IP_INNOROUTES', 'IP_OUTNOROUTES', 'IPV6_NOROUTE']);
const REASON_NEIGH = new Set(['NEIGH_FAILED', 'NEIGH_QUEUEFULL', 'NEIGH_DEAD', 'NEIGH_CREATEFAIL']);
const REASON_MTU = new Set(['PKT_TOO_BIG', 'FRAG_TOO_FAR', 'FRAG_REASM_TIMEOUT', 'IP_FRAG_NEEDED', 'FRAG_NEEDED']);
const REASON_SOCKET_FULL = new Set(['SOCKET_RCVBUFF', 'SOCKET_BACKLOG', 'PROTO_MEM']);
const REASON_TC = new Set(['TC_INGRESS', 'TC_EGRESS', 'TC_DROP', 'TC_CHAIN_NOTFOUND', 'TC_RECLASSIFY_LOOP']);
const FAILED_ROUTES = new Set(['unreachable', 'blackhole', 'prohibit', 'error', 'throw']);

const RP_FILTER_MODE: Record<number, string> = { 0: 'off', 1: 'strict', 2: 'loose' };

function findLast<T>(a: readonly T[], p: (x: T) => boolean): T | undefined {
  for (let i = a.length - 1; i >= 0; i--) if (p(a[i]!)) return a[i];
  return undefined;
}

const routeOf = (r: ExplainEvent): RouteSection | undefined => r.route;

/**
 * The route lookups made for the journey: tied to its skb, else (per namespace) of its flow there
 * while it went. A socket's lookup comes before its skb: the sender's namespace has only untied ones.
 */
function routesOf(records: readonly ExplainEvent[], ctx: ExplainContext, daddr: string | undefined): ExplainEvent[] {
  const tied = records.filter((r) => routeOf(r) !== undefined);
  if (daddr === undefined) return tied;
  const from = records[0]!.time;
  const to = records[records.length - 1]!.time;
  const withTied = new Set(tied.map((r) => r.netns));
  const untied = [...new Set(records.map((r) => r.netns))].filter((n) => !withTied.has(n))
    .flatMap((n) => ctx.untiedRoutesFor(n, daddr, from, to)).filter((r) => routeOf(r)!.error !== 'EAGAIN');
  return [...untied, ...tied].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

function routeLine(r: ExplainEvent): Evidence {
  const rt = r.route!;
  const via = rt.oif_name ? ` via ${rt.gateway ? `${rt.gateway} on ` : ''}${rt.oif_name}` : '';
  const table = rt.table_name ?? (rt.table !== undefined ? String(rt.table) : '');
  return said(r, `route lookup in ${nsOf(r)}${table ? ` (table ${table})` : ''}: ${rt.result}${rt.error ? ` ${rt.error}` : ''}${via}${rt.prefix ? ` (${rt.prefix})` : ''}`);
}

function nftCause(r: ExplainEvent, records: readonly ExplainEvent[]): Finding {
  const n = r.nft!;
  const what = n.kind === 'policy' ? `the policy of nft chain ${n.family} ${n.table} ${n.chain}`
    : `nft rule ${n.family} ${n.table} ${n.chain} #${n.handle ?? '?'}${n.rule !== null ? ` ${JSON.stringify(n.rule)}` : ''}`;
  const evidence = [said(r, `nft ${n.family} ${n.table} ${n.chain}${n.kind === 'rule' ? ` handle ${n.handle ?? '?'}` : ` ${n.kind}`}${n.rule !== null ? `: ${n.rule}` : ''} → ${n.verdict.toUpperCase()}`)];
  const invalidRule = n.rule !== null && /\bct\s+state\b[^;]*\binvalid\b/i.test(n.rule);
  // Conntrack attaches no entry to a packet it finds INVALID: at netfilter hooks it shows as NONE.
  const untracked = findLast(records, (x) => x.ct !== undefined && x.ct.source === 'nfct' && x.time <= r.time && samePlace(x, r));
  if (invalidRule) {
    if (untracked?.ct && !untracked.ct.found) evidence.push(said(untracked, `conntrack had no entry for it at ${untracked.func} (ct NONE): it found it INVALID`));
    return { cause: 'ct-invalid', sentence: `dropped as conntrack INVALID by ${what} in ${nsOf(r)}`, evidence };
  }
  return { cause: 'nft-drop', sentence: `dropped by ${what} in ${nsOf(r)}`, evidence };
}

function programs(by: ReadonlyArray<{ id: number; name: string }>): string {
  return by.length === 0 ? 'a program' : by.map((p) => `${p.name || 'prog'}#${p.id}`).join(' or ');
}

/** Every tc point the journey crossed, with its direction: what tcpdump on each device sees. */
function tcCrossings(records: readonly ExplainEvent[]): Evidence[] {
  return records.filter((r) => r.func === 'tc:ingress' || r.func === 'tc:egress').map((r) => {
    const v = r.verdict;
    const did = v && v.action !== 'unknown' ? `: ${v.action.toUpperCase()}${v.target ? ` → ${v.target.iface}@${v.target.netns_name || v.target.netns}` : ''} by ${programs(v.by)}` : '';
    return said(r, `${r.func.slice(3)} of ${placeOf(r)}${did}`);
  });
}

function redirectCause(r: ExplainEvent, records: readonly ExplainEvent[]): Finding {
  const v = r.verdict!;
  const t = v.target;
  const dir = r.func === 'tc:ingress' ? 'ingress' : 'egress';
  const into = t ? `${t.iface}@${t.netns_name || t.netns}${t.direction === 'egress' ? ' (egress)' : ''}` : 'another device';
  const seen = records.filter((x) => deviceOf(x) === deviceOf(r) && samePlace(x, r) && /^tc:/.test(x.func)).map((x) => x.func.slice(3));
  const only = [...new Set(seen)];
  const sentence = `redirected by ${programs(v.by)} at tc ${dir} of ${placeOf(r)} into ${into}` +
    (only.length === 1 ? `: tcpdump on ${deviceOf(r)} sees only ${only[0]}` : '');
  return { cause: 'tc-redirect', sentence, evidence: tcCrossings(records) };
}

/**
 * A redirect the kernel could not carry out: freed right after the tc point
 * that redirected it, before any point of the target saw it, or by
 * skb_do_redirect itself (a target down or gone). The verdict stage, seeing
 * the free next, may have inferred DROP there: the free's caller tells.
 */
function failedRedirect(records: readonly ExplainEvent[], last: ExplainEvent, redirect: ExplainEvent | undefined): Finding | null {
  if (last.func !== 'kfree_skb') return null;
  const before = records[records.length - 2];
  const inRedirect = callerOf(last) === 'skb_do_redirect';
  const at = inRedirect ? findLast(records, (r) => r.func === 'tc:ingress' || r.func === 'tc:egress') : redirect;
  if (at === undefined || at !== before) return null;
  const v = at.verdict;
  const t = v?.action === 'redirect' ? v.target : null;
  const into = t ? ` into ${t.iface}@${t.netns_name || t.netns}` : '';
  return {
    cause: 'tc-redirect',
    sentence: `redirected by ${programs(v?.by ?? [])} at tc ${at.func.slice(3)} of ${placeOf(at)}${into}, but the redirect failed: ` +
      `${inRedirect ? 'freed in skb_do_redirect (its target is down, gone or cannot take it)' : 'freed right after'}`,
    evidence: [...tcCrossings(records), dropLine(last)],
  };
}

function forwarding(records: readonly ExplainEvent[], j: Journey, ctx: ExplainContext, routes: ExplainEvent[]): Finding | null {
  const last = records[records.length - 1]!;
  const t = j.last;
  if (t === null) return null;
  const arrival = records.find((r) => samePlace(r, last) && ARRIVING.test(r.func));
  if (!arrival) return null;
  if (records.some((r) => samePlace(r, last) && r.time >= arrival.time && LEAVING.test(r.func))) return null;
  const s = ctx.settingsAt(last.netns, arrival.time);
  if (!s || ownsAddress(s, t.daddr) || (s.devices ?? []).length === 0) return null;
  const family = t.daddr.includes(':') ? 6 : 4;
  const iif = deviceOf(arrival);
  const f = forwardingOn(s, family, iif);
  if (!f || f.value !== 0) return null;
  const evidence = [said(arrival, `arrived at ${placeOf(arrival)} for ${t.daddr}, which is none of ${nsOf(arrival)}'s addresses`)];
  const route = findLast(routes, (r) => samePlace(r, last) && routeOf(r)!.result === 'unicast');
  if (route) evidence.push(routeLine(route));
  evidence.push({ text: `settings of ${nsOf(arrival)}: ${f.text}`, time: s.time });
  if (FREEING_POINTS.has(last.func)) evidence.push(dropLine(last));
  else evidence.push(said(last, `last seen at ${last.func} of ${placeOf(last)}: it never left ${nsOf(last)}`));
  return { cause: 'forwarding-disabled', sentence: `not forwarded: ${f.text} in ${nsOf(arrival)}`, evidence };
}

function noRoute(last: ExplainEvent, routes: ExplainEvent[]): Finding {
  const failed = findLast(routes, (r) => FAILED_ROUTES.has(routeOf(r)!.result ?? '') && routeOf(r)!.error !== 'EAGAIN');
  const evidence = [...(failed ? [routeLine(failed)] : []), dropLine(last)];
  // ip_error's EHOSTUNREACH: an unreachable route, or forwarding off, which only the settings tell.
  if (!failed && last.drop_reason === 'IP_INADDRERRORS') evidence.push({ text: 'the kernel gives this reason for forwarding turned off too: the trace has no settings of this namespace to tell', time: null });
  const dst = last.tuple?.daddr ?? 'its destination';
  const rt = failed?.route;
  const what = rt ? (rt.result === 'error' || rt.result === 'unreachable' ? 'no route' : `a ${rt.result} route`) : 'no route';
  return { cause: 'no-route', sentence: `${what} to ${dst} in ${nsOf(last)}`, evidence };
}

function rpFilter(last: ExplainEvent, ctx: ExplainContext, routes: ExplainEvent[]): Finding {
  const iif = deviceOf(last);
  const s = ctx.settingsAt(last.netns, last.time);
  const v = s ? rpFilterOn(s, iif) : null;
  const evidence = [dropLine(last)];
  if (s && v !== null) evidence.push({ text: `settings of ${nsOf(last)}: rp_filter=${v} (${RP_FILTER_MODE[v] ?? v}) on ${iif} (the larger of all's and ${iif}'s)`, time: s.time });
  const saddr = last.tuple?.saddr;
  const back = saddr === undefined ? undefined : findLast(routes, (r) => samePlace(r, last) && r.tuple?.daddr === saddr);
  if (back) evidence.push(routeLine(back));
  const mode = v !== null ? `, ${RP_FILTER_MODE[v] ?? v}` : '';
  return {
    cause: 'rp-filter',
    sentence: `dropped by reverse-path filtering on ${iif} in ${nsOf(last)} (rp_filter${v !== null ? `=${v}` : ''}${mode}): the way back to ${saddr ?? 'its source'} is not through ${iif}`,
    evidence,
  };
}

/**
 * How many solicitations went out before the entry failed: the entry's changes while INCOMPLETE
 * (the first probe's send, then each retry's timer). The kernel's own counter starts at
 * ucast_probes, so it is not the number sent; it is the answer where the changes are missing.
 */
function probesSent(changes: readonly ExplainEvent[], failed: ExplainEvent): number | null {
  const tries = changes.filter((e) => e.time <= failed.time && e.neigh!.iface === failed.neigh!.iface && e.neigh!.state === 'INCOMPLETE' &&
    (e.neigh!.event === 'send_done' || e.neigh!.event === 'timer'));
  // Each solicitation moves the counter on: one per value, however many packets waited (each queued one's send_done repeats it).
  const counted = new Set(tries.map((e) => e.neigh!.probes ?? e.time));
  return counted.size > 0 ? counted.size : failed.neigh!.probes ?? null;
}

function neighFailed(last: ExplainEvent, j: Journey, ctx: ExplainContext, routes: ExplainEvent[]): Finding {
  const route = findLast(routes, (r) => routeOf(r)!.result === 'unicast');
  const hop = route?.route?.gateway ?? j.last?.daddr ?? '?';
  const changes = ctx.neighbourChanges(hop, last.time).filter((e) => samePlace(e, last));
  // The entry's FAILED change comes after the drops it makes (neigh_invalidate frees the queue first):
  // a NEIGH_FAILED drop by neigh_invalidate tells the failure, the INCOMPLETE changes before it the probes.
  const failedChange = findLast(changes, (e) => (e.neigh as NeighSection).state === 'FAILED');
  const invalidated = last.drop_reason === 'NEIGH_FAILED' && callerOf(last) === 'neigh_invalidate';
  const failed = failedChange ?? (invalidated ? findLast(changes, (e) => (e.neigh as NeighSection).state === 'INCOMPLETE') : undefined);
  const evidence: Evidence[] = [];
  if (route) evidence.push(routeLine(route));
  const n = failed?.neigh;
  const sent = failed ? probesSent(changes, failed) : null;
  const probes = sent !== null ? ` after ${sent} probes` : '';
  if (failed && n) {
    evidence.push(said(failed, failedChange
      ? `neighbour ${n.address} on ${n.iface ?? deviceOf(failed)} in ${nsOf(failed)}: ${n.old_state ?? 'INCOMPLETE'} → FAILED${probes}`
      : `neighbour ${n.address} on ${n.iface ?? deviceOf(failed)} in ${nsOf(failed)}: INCOMPLETE${probes}, unanswered; failed at the drop`));
  }
  evidence.push(dropLine(last));
  const holder = holderOf(ctx.latestSettings(), hop);
  if (holder) {
    const arpIgnore = ipv4Value(holder.settings, holder.device, 'arp_ignore');
    evidence.push({
      text: `${hop} is on ${holder.device} in ${netnsText(holder.settings.netns_name, holder.settings.netns)}${holder.up === false ? ', which is down' : ''}${arpIgnore ? ` (arp_ignore=${arpIgnore})` : ''}: it should have answered`,
      time: holder.settings.time,
    });
  } else if (ctx.latestSettings().length > 0) {
    evidence.push({ text: `no traced namespace has ${hop}`, time: null });
    // A routed pod's gateway is no one's: only the host side of its link, by proxy ARP, can answer for it.
    const saddr = last.tuple?.saddr;
    const host = saddr === undefined ? null : routerTowards(ctx.latestSettings(), saddr, last.netns);
    const proxy = host ? ipv4Value(host.settings, host.device, 'proxy_arp') : null;
    if (host && proxy !== null) {
      evidence.push({
        text: `${host.device} in ${netnsText(host.settings.netns_name, host.settings.netns)} routes to ${saddr} and would answer for ${hop} by proxy ARP: proxy_arp=${proxy} on ${host.device}`,
        time: host.settings.time,
      });
    }
  }
  const dev = n?.iface ?? (route?.route?.oif_name || deviceOf(last));
  const s = ctx.settingsAt(last.netns, last.time);
  const proxy = s ? ipv4Value(s, dev, 'proxy_arp') : null;
  if (s && proxy !== null) evidence.push({ text: `settings of ${nsOf(last)}: proxy_arp=${proxy} on ${dev}`, time: s.time });
  return { cause: 'neigh-failed', sentence: `no neighbour answered for ${hop} on ${dev} in ${nsOf(last)}${failed ? ` (FAILED${probes})` : ''}`, evidence };
}

function mtu(last: ExplainEvent, records: readonly ExplainEvent[], ctx: ExplainContext, routes: ExplainEvent[]): Finding {
  const sent = records.filter((r) => !FREEING_POINTS.has(r.func) && samePlace(r, last));
  const out = findLast(sent, (r) => r.mtu > 0 && r.len > r.mtu) ?? sent[sent.length - 1] ?? last;
  // A forwarded packet is too big for the device its route leads out of, not the one it came in on.
  const route = findLast(routes, (r) => samePlace(r, last) && routeOf(r)!.result === 'unicast' && !!routeOf(r)!.oif_name);
  const egress = out.len > out.mtu && out.mtu > 0 ? deviceOf(out) : route?.route?.oif_name ?? deviceOf(out);
  const s = ctx.settingsAt(last.netns, last.time);
  const dev = s?.devices?.find((d) => d.name === egress);
  const limit = dev?.mtu ?? (egress === deviceOf(out) ? out.mtu : '?');
  const evidence = [dropLine(last), said(out, `${out.len} bytes at ${out.func} of ${placeOf(out)} (mtu ${out.mtu})`)];
  if (route && egress !== deviceOf(out)) evidence.push(routeLine(route));
  if (dev?.mtu !== undefined && s) evidence.push({ text: `settings of ${nsOf(last)}: ${dev.name}${dev.kind ? ` (${dev.kind})` : ''} mtu ${dev.mtu}`, time: s.time });
  const icmp = records.find((r) => r.func === 'icmp_send' || r.func === 'icmp6_send');
  // A tunnel's outer packet tells the tunnel's own address, not the inner sender.
  if (icmp) evidence.push(said(icmp, `${icmp.func}: ${icmp.tuple?.saddr ?? 'the sender'} is told (fragmentation needed / packet too big)`));
  return { cause: 'mtu', sentence: `too big for ${egress || 'the path'} in ${nsOf(last)}: ${out.len} bytes, mtu ${limit}`, evidence };
}

function socketCause(cause: 'no-socket' | 'socket-full', last: ExplainEvent, j: Journey): Finding {
  const t = j.last;
  const port = t ? `${t.proto} port ${t.dport}` : 'its port';
  const sentence = cause === 'no-socket'
    ? `no socket for ${port} in ${nsOf(last)}${t?.proto === 'udp' ? ' (answered with ICMP port unreachable)' : t?.proto === 'tcp' ? ' (answered with a reset)' : ''}`
    : `the socket of ${port} in ${nsOf(last)} has its receive buffer full`;
  return { cause, sentence, evidence: [dropLine(last)] };
}

/** What the kernel's drop reason says, with the settings and the sections; null where it says nothing more than itself. */
function byReason(last: ExplainEvent, records: readonly ExplainEvent[], j: Journey, ctx: ExplainContext, routes: ExplainEvent[]): Finding | null {
  const reason = last.drop_reason ?? '';
  if (reason === 'NETFILTER_DROP') {
    const hook = findLast(records, (r) => r.func.startsWith('nf:') && samePlace(r, last));
    return {
      cause: 'nft-drop',
      sentence: `dropped by a netfilter rule in ${nsOf(last)}${hook ? ` at ${hook.func.replace(/^nf:ipv[46]:/, '')}` : ''} (--output-nft names the rule)`,
      evidence: [...(hook ? [said(hook, `last netfilter hook passed: ${hook.func} of ${placeOf(hook)}`)] : []), dropLine(last)],
    };
  }
  if (REASON_TC.has(reason)) {
    return { cause: 'tc-drop', sentence: `dropped by a tc program at ${placeOf(last)} (--filter-trace-tc names it)`, evidence: [...tcCrossings(records), dropLine(last)] };
  }
  if (reason === 'IP_RPFILTER') return rpFilter(last, ctx, routes);
  if (REASON_NEIGH.has(reason)) return neighFailed(last, j, ctx, routes);
  if (REASON_MTU.has(reason)) return mtu(last, records, ctx, routes);
  if (reason === 'NO_SOCKET') return socketCause('no-socket', last, j);
  if (REASON_SOCKET_FULL.has(reason)) return socketCause('socket-full', last, j);
  if (reason === 'IP_INADDRERRORS' || reason === 'IPV6DISABLED') return forwarding(records, j, ctx, routes) ?? noRoute(last, routes);
  if (REASON_NO_ROUTE.has(reason)) return noRoute(last, routes);
  return null;
}

/**
 * Informational, for a journey that arrived: its next hop was answered by
 * proxy ARP — the link-layer address the neighbour entry took is a device's
 * that does not have the address, in a namespace with proxy_arp on it. Told
 * once per neighbour and answer.
 */
function proxyArp(records: readonly ExplainEvent[], j: Journey, ctx: ExplainContext, routes: ExplainEvent[]): Finding | null {
  const first = records[0]!;
  const route = findLast(routes, (r) => samePlace(r, first) && routeOf(r)!.result === 'unicast');
  const hop = route?.route?.gateway ?? j.first?.daddr;
  if (hop === undefined) return null;
  const last = records[records.length - 1]!;
  const answer = findLast(ctx.neighbourChanges(hop, last.time), (e) => e.neigh!.state === 'REACHABLE' && !!e.neigh!.lladdr);
  const lladdr = answer?.neigh?.lladdr;
  if (!answer || !lladdr || ctx.proxied.has(`${hop} ${lladdr}`)) return null;
  const by = deviceWithLladdr(ctx.latestSettings(), lladdr);
  if (!by || by.addresses.some((a) => a.replace(/\/\d+$/, '') === hop)) return null;
  const proxy = ipv4Value(by.settings, by.device, 'proxy_arp');
  if (proxy !== 1) return null;
  ctx.proxied.add(`${hop} ${lladdr}`);
  const ns = netnsText(by.settings.netns_name, by.settings.netns);
  return {
    cause: 'proxy-arp',
    sentence: `${hop} was answered by proxy ARP: ${by.device} in ${ns} (proxy_arp=1) answered with its own address ${lladdr}`,
    evidence: [
      said(answer, `neighbour ${hop} on ${answer.neigh!.iface ?? deviceOf(answer)} in ${nsOf(answer)}: ${answer.neigh!.old_state ?? '?'} → REACHABLE at ${lladdr}`),
      { text: `settings of ${ns}: ${by.device} has ${lladdr} and ${by.addresses.join(', ') || 'no address'}, proxy_arp=1`, time: by.settings.time },
    ],
  };
}

/** The journey's explanation, or null when nothing went wrong that the trace shows. */
export function explainJourney(j: Journey, ctx: ExplainContext): Finding | null {
  const records = (j.records ?? []) as ExplainEvent[];
  if (records.length === 0) return null;
  const last = records[records.length - 1]!;
  const dropped = j.end.how === 'dropped';
  const freed = FREEING_POINTS.has(last.func);
  const routes = routesOf(records, ctx, j.last?.daddr);

  const nft = findLast(records, (r) => r.nft !== undefined && r.nft.verdict === 'drop');
  if (nft && (dropped || !freed)) return nftCause(nft, records);
  const tcDrop = findLast(records, (r) => r.verdict !== undefined && r.verdict.action === 'drop');
  if (tcDrop && (dropped || !freed || last.func === 'kfree_skb') && callerOf(last) !== 'skb_do_redirect') {
    const v = tcDrop.verdict!;
    const xdp = tcDrop.func.startsWith('xdp');
    return {
      cause: xdp ? 'xdp-drop' : 'tc-drop',
      sentence: `dropped by ${xdp ? 'XDP' : 'tc'} program ${programs(v.by)} at ${tcDrop.func} of ${placeOf(tcDrop)}${v.reason ? ` (${v.reason})` : ''}`,
      evidence: [...tcCrossings(records), ...(dropped ? [dropLine(last)] : [])],
    };
  }
  const failedRoute = findLast(routes, (r) => FAILED_ROUTES.has(routeOf(r)!.result ?? '') && routeOf(r)!.error !== 'EAGAIN');
  if (dropped) {
    const found = byReason(last, records, j, ctx, routes);
    if (found) return found;
    if (failedRoute) return noRoute(last, routes);
  }
  // Freed without a reason too: kernels before drop reasons, and frees that give none.
  if (!records.some((r) => r.func === 'skb_copy_datagram_iovec')) {
    const fwd = forwarding(records, j, ctx, routes);
    if (fwd) return fwd;
  }
  const redirect = findLast(records, (r) => r.verdict !== undefined && r.verdict.action === 'redirect');
  if (dropped) {
    if (redirect) {
      const f = redirectCause(redirect, records);
      return { ...f, evidence: [...f.evidence, dropLine(last)] };
    }
    return { cause: 'dropped', sentence: `dropped: ${last.drop_reason ?? 'no reason given'} at ${placeOf(last)}${callerOf(last) ? ` by ${callerOf(last)}` : ''}`, evidence: [dropLine(last)] };
  }
  const failed = failedRedirect(records, last, redirect);
  if (failed) return failed;
  // Fragmentation refused (DF set, or a tunnel's outer packet with df set): freed without a reason on some kernels.
  if (last.func === 'kfree_skb' && /^(ip_fragment|ip6_fragment|ip_do_fragment)\b/.test(callerOf(last))) return mtu(last, records, ctx, routes);
  // ip_error frees what an unreachable route stopped without a reason on some kernels (NOT_SPECIFIED).
  if (last.func === 'kfree_skb' && failedRoute && samePlace(failedRoute, last) && !records.some((r) => r.time > failedRoute.time && LEAVING.test(r.func))) {
    return noRoute(last, routes);
  }
  if (freed || !MID_PATH.test(last.func)) return proxyArp(records, j, ctx, routes);
  if (failedRoute && !records.some((r) => r.time > failedRoute.time && LEAVING.test(r.func))) return noRoute(last, routes);
  if (redirect) return redirectCause(redirect, records);
  const evidence = [said(last, `last seen at ${last.func} of ${placeOf(last)}; no point saw it freed, delivered or sent on`)];
  if (ctx.lost > 0) evidence.push({ text: `${ctx.lost} records were lost while tracing: its later points may be among them`, time: null });
  return { cause: 'unfinished', sentence: `last seen at ${last.func} of ${placeOf(last)}`, evidence };
}

/** `udp 192.0.2.1:40000 > 198.51.100.2:9999`: the journey's flow as first seen. */
export function flowText(j: Journey): string {
  return j.first ? `${j.first.proto} ${tupleText(j.first)}` : '';
}
