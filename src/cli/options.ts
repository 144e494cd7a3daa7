/**
 * The options of a trace (and of `pktpath list`), grouped as `--help` shows
 * them: Filters, Output, Files, Attach, Session; pwru's names first in each.
 */
import { Command, Option } from 'commander';
import { DEFAULT_MAX_BACKUPS } from '../output/config.js';
import { DEFAULT_SNAPLEN, MAX_SNAPLEN } from '../output/pcapng.js';
import { BACKEND_CHOICES, FAMILIES } from '../plan/plan.js';

const GROUP = {
  filters: 'Filters (in the kernel, before anything costly):',
  output: 'Output:',
  files: 'Files:',
  attach: 'Attach (which observation points):',
  session: 'Session:',
} as const;

const option = (group: string, flags: string, description: string) => new Option(flags, description).helpGroup(group);

/** Rotation, pcapng and grouping: the outputs beyond pwru's set. */
export function addOutputFileOptions(cmd: Command): Command {
  return cmd
    .addOption(option(GROUP.output, '--group-by <what>',
      'skb: each packet\'s path as one block when it ends; ct: the packets of each connection together'))
    .addOption(option(GROUP.files, '--output-file-max-size <size>', 'rotate --output-file before it grows past this size: megabytes as in pwru (100), or with a unit (4K, 1.5G)'))
    // No commander default: giving it without --output-file is an error only when it was given.
    .addOption(option(GROUP.files, '--output-file-max-backups <n>', `rotated files to keep: FILE.1 (newest) to FILE.n (default: ${DEFAULT_MAX_BACKUPS})`))
    .addOption(option(GROUP.files, '--force', 'replace output files that exist (else pktpath refuses them); files are made 0600, never written through a symbolic link'))
    .addOption(option(GROUP.files, '--output-pcap <path>', 'also write the captured packets as pcapng, one comment per observation point'))
    .addOption(option(GROUP.files, '--pcap-snaplen <bytes>', `bytes of each packet to capture (1-${MAX_SNAPLEN})`)
      .default(String(DEFAULT_SNAPLEN)));
}

export function addTraceOptions(cmd: Command): Command {
  cmd.argument('[expression...]', 'pcap-filter expression, as tcpdump takes it (e.g. "tcp and dst port 80")');

  cmd.optionsGroup(GROUP.filters)
    .option('--filter-src-ip <ip>', 'source IPv4/IPv6 address')
    .option('--filter-dst-ip <ip>', 'destination IPv4/IPv6 address')
    .option('--filter-proto <proto>', 'tcp, udp, icmp, icmp6, sctp or a protocol number')
    .option('--filter-src-port <port>', 'source port')
    .option('--filter-dst-port <port>', 'destination port')
    .option('--filter-netns <netns>', 'only this network namespace: /proc/PID/ns/net, /run/netns/NAME, NAME or inode:N')
    .option('--filter-mark <value[/mask]>', 'only packets whose skb mark matches')
    .option('--filter-ifname <name>', 'only packets on this device (in --filter-netns, else in the current namespace)')
    .option('--filter-track-skb', 'keep following a matched skb whatever its headers become (NAT, tunnels)')
    .option('--filter-trace-tc', 'trace the other tc programs on the traced devices: entry, exit and the verdict each returns (needs fentry)')
    .option('--filter-trace-xdp', 'trace the XDP programs on the traced devices: entry, exit and the verdict each returns (needs fentry)')
    .option('--filter-ip <ip>', 'source or destination address')
    .option('--filter-port <port>', 'source or destination port');

  cmd.optionsGroup(GROUP.output)
    .option('--output-tuple', 'print the 5-tuple')
    .option('--output-meta', 'print netns, mark, interface, protocol, MTU and length')
    .option('--output-stack', 'print the kernel stack (at tracepoints)')
    .option('--output-caller', 'print the calling function where the point has one')
    .option('--output-limit-lines <n>', 'stop after n events')
    .option('--output-json', 'write JSON lines (schema v1)')
    .addOption(new Option('--timestamp <mode>', 'none, current, relative or absolute').default('none'))
    .option('--output-tcp-flags', 'print TCP flags in the tuple')
    .option('--output-ct', 'print conntrack state, status and NAT where a point knows them (netfilter hooks, tc lookups)')
    .option('--output-nft', 'show the nft rules (iptables-nft too) each traced packet meets, from nftables\' own tracing; ' +
      'adds a table inet pktpath_trace_PID in each traced namespace, removed on exit')
    .addOption(new Option('--color <when>', 'auto, always or never').default('auto'));

  cmd.optionsGroup(GROUP.files)
    .option('--output-file <path>', 'write to a file instead of stdout');
  addOutputFileOptions(cmd);

  cmd.optionsGroup(GROUP.attach)
    .option('--filter-func <regex>', 'observation points to attach: those whose name the regex finds, as pwru (e.g. "kfree_skb|tc:", "nf:ipv4")')
    .option('--attach <families>', `families to attach: ${FAMILIES.join(',')} (functions where the kernel lets them be probed)`)
    .option('--backend <backend>', `how kernel functions are probed: ${BACKEND_CHOICES.join(', ')} (the best this kernel allows, found by trying)`);

  cmd.optionsGroup(GROUP.session)
    .option('--ring-size <size>', 'ring buffer size (rounded up to a power of two)', '16M')
    .option('--duration <seconds>', 'stop after this many seconds')
    .option('--ready-file <path>', 'create this file once everything is attached (removed on exit), for scripts and readiness probes');
  return cmd.optionsGroup('Options:');
}
