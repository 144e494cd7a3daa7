/**
 * `pktpath datapath`: what is on the packet path of each traced namespace —
 * BPF programs at tc (tcx and legacy), XDP, netfilter and cgroup hooks, and
 * nft base chains — as text or JSON (schema/datapath.v1.json).
 */
import {
  type DatapathInventory, type DeviceDatapath, type NamespaceDatapath, type ProgRef, datapathInventory,
} from '../kernel/datapath.js';
import { NetnsNotFound, resolveNetns } from '../kernel/netns.js';
import { tracedNamespaces } from '../kernel/view.js';
import { escapeLines, escapeText, jsonText } from '../output/escape.js';
import { settingsLines } from '../output/settings.js';
import { EXIT_OK, requirePrivileges } from './exit.js';
import { UsageError } from './values.js';

export const DATAPATH_SCHEMA = 'pktpath.datapath.v1';

export interface DatapathOptions {
  json?: boolean;
  filterNetns?: string;
  all?: boolean;
}

const prog = (p: ProgRef) => `${p.name || '(no name)'}#${p.id}${p.own ? ' (pktpath)' : ''}`;
const nsName = (n: NamespaceDatapath['netns']) => (n.name ? `${n.name} (inode ${n.inode})` : `inode ${n.inode}`);

function hasPrograms(d: DeviceDatapath): boolean {
  return d.xdp !== null || Object.values(d.tc).some((h) => h.tcx.length + h.legacy.length > 0);
}

/** The text form: one block per namespace, devices with programs, then nft base chains. */
export function formatDatapath(inv: DatapathInventory, opts: { all?: boolean } = {}): string {
  const lines: string[] = [];
  for (const ns of inv.namespaces) {
    lines.push(`netns ${nsName(ns.netns)}`);
    const quiet: string[] = [];
    for (const d of ns.devices) {
      if (!hasPrograms(d) && !opts.all) {
        quiet.push(d.name);
        continue;
      }
      lines.push(`  ${d.name} (ifindex ${d.ifindex})`);
      if (d.xdp) lines.push(`    xdp ${d.xdp.mode}: ${prog(d.xdp.prog)} tag ${d.xdp.prog.tag}`);
      for (const dir of ['ingress', 'egress'] as const) {
        const h = d.tc[dir];
        for (const [i, p] of h.tcx.entries()) {
          lines.push(`    tc ${dir} tcx[${i}]: ${prog(p)} ${p.type} tag ${p.tag}${p.linkId ? ` link ${p.linkId}` : ''}`);
        }
        for (const p of h.legacy) {
          lines.push(`    tc ${dir} clsact pref ${p.priority} handle 0x${p.handle.toString(16)}: ${prog(p)} tag ${p.tag}` +
            ` ${p.tcName}${p.directAction ? ' direct-action' : ''}`);
        }
      }
    }
    if (quiet.length > 0) lines.push(`  no tc or XDP programs: ${quiet.join(', ')}`);
    if (ns.nft) {
      for (const t of ns.nft.tables) {
        lines.push(`  nft table ${t.family} ${t.name}`);
        for (const c of ns.nft.baseChains.filter((x) => x.family === t.family && x.table === t.name)) {
          lines.push(`    chain ${c.name}: type ${c.type} hook ${c.hook}${c.devices.length ? ` devices ${c.devices.join(',')}` : ''}` +
            ` priority ${c.priority} policy ${c.policy}`);
        }
      }
      if (ns.nft.tables.length === 0) lines.push('  nft: no tables');
    }
    if (ns.settings) {
      lines.push(`  settings: net.ipv4.ip_forward=${ns.settings.ipv4.forwarding}`, ...settingsLines(ns.settings).map((l) => `  ${l}`));
    }
    for (const e of ns.errors) lines.push(`  not read: ${e}`);
  }
  lines.push('netfilter BPF links (every namespace; the kernel does not say which):');
  for (const l of inv.netfilter) lines.push(`  ${l.family} ${l.hook} priority ${l.priority}: ${prog(l)} link ${l.linkId}`);
  if (inv.netfilter.length === 0) lines.push('  none');
  lines.push('cgroup skb programs:');
  for (const p of inv.cgroupSkb) {
    lines.push(`  ${p.direction}: ${prog(p)}${p.linkId ? ` cgroup id ${p.cgroupId} link ${p.linkId}` : ' (attached without a link: cgroup not reported)'}`);
  }
  if (inv.cgroupSkb.length === 0) lines.push('  none');
  return `${lines.join('\n')}\n`;
}

/** One line per namespace for `doctor` and `list`: how many foreign programs and base chains it has. */
export function datapathSummary(inv: DatapathInventory): string[] {
  return inv.namespaces.map((ns) => {
    let tc = 0;
    let xdp = 0;
    for (const d of ns.devices) {
      if (d.xdp && !d.xdp.prog.own) xdp++;
      for (const h of Object.values(d.tc)) tc += [...h.tcx, ...h.legacy].filter((p) => !p.own).length;
    }
    const chains = ns.nft ? `${ns.nft.baseChains.length} nft base chains` : 'nft not read';
    return escapeText(`datapath: netns ${nsName(ns.netns)}: ${tc} tc programs, ${xdp} XDP, ${chains}`);
  });
}

export function datapathNamespaces(filterNetns: string | undefined) {
  if (filterNetns === undefined) return tracedNamespaces();
  try {
    return [resolveNetns(filterNetns)];
  } catch (e) {
    if (e instanceof NetnsNotFound) throw new UsageError(e.message);
    throw e;
  }
}

export async function datapath(opts: DatapathOptions): Promise<number> {
  const namespaces = datapathNamespaces(opts.filterNetns);
  requirePrivileges();
  const inv = datapathInventory(namespaces);
  // Device, namespace, program and nft names are anyone's: escaped (../output/escape.ts).
  process.stdout.write(opts.json ? `${jsonText({ schema: DATAPATH_SCHEMA, ...inv })}\n` : escapeLines(formatDatapath(inv, opts)));
  return EXIT_OK;
}
