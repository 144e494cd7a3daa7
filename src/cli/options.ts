/**
 * The options of a trace (and of `pktpath list`), grouped as `--help` shows
 * them: Filters, Output, Files, Attach, Session; pwru's names first in each.
 */
import { Command, Option } from 'commander';
import { DEFAULT_MAX_BACKUPS } from '../output/config.js';
import { DEFAULT_SNAPLEN, MAX_SNAPLEN } from '../output/pcapng.js';
import { sectionOptions } from '../output/sections/registry.js';
import { DEFAULT_DUMP_ROOM, MAX_DUMP_ROOM, MIN_DUMP_ROOM } from '../output/sections/dump.js';
import { MIN_NETNS_NAME_CHARS } from '../output/text.js';
import { BACKEND_CHOICES, FAMILIES, TC_DEVICE_BUDGET } from '../plan/plan.js';

const GROUP = {
  filters: 'Filters (in the kernel, before anything costly):',
  output: 'Output:',
  files: 'Files:',
  attach: 'Attach (which observation points):',
  session: 'Session:',
} as const;

/** A repeatable option's values, in the order given. */
const collect = (value: string, previous: string[]): string[] => [...previous, value];

const option = (group: string, flags: string, description: string) => new Option(flags, description).helpGroup(group);

/** Rotation, pcapng and grouping: the outputs beyond pwru's set. */
export function addOutputFileOptions(cmd: Command): Command {
  return cmd
    .addOption(option(GROUP.output, '--group-by <what>',
      'skb: each packet\'s path as one block when it ends; ct: the packets of each connection together'))
    .addOption(option(GROUP.files, '--output-file-max-size <size>', 'rotate --output-file before it grows past this size: megabytes as in pwru (100), or with a unit (4K, 1.5G)'))
    // No commander default: giving it without --output-file is an error only when it was given.
    .addOption(option(GROUP.files, '--output-file-max-backups <n>', `rotated files to keep: FILE.1 (newest) to FILE.n (default: ${DEFAULT_MAX_BACKUPS})`))
    .addOption(option(GROUP.files, '--output-file-max-age <days>', 'delete rotated files last written more than this many days ago'))
    .addOption(option(GROUP.files, '--output-file-compress', 'gzip rotated files: FILE.1.gz … FILE.n.gz'))
    .addOption(option(GROUP.files, '--force', 'replace output files that exist (else pktpath refuses them); files are made 0600, never written through a symbolic link'))
    .addOption(option(GROUP.files, '--output-json-file <path>', 'also write the trace as JSON lines to this file, beside the text (for `pktpath show`)'))
    .addOption(option(GROUP.files, '--output-pcap <path>', 'also write the captured packets as pcapng, one comment per observation point'))
    .addOption(option(GROUP.files, '--pcap-snaplen <bytes>', `bytes of each packet to capture (1-${MAX_SNAPLEN})`)
      .default(String(DEFAULT_SNAPLEN)));
}

/**
 * The options of a trace. `recorded`: the same for `pktpath show`, which
 * applies the filters to recorded events and renders them, so what only a
 * live trace can do (attach, follow skbs, read nft's trace) is left out.
 */
export function addTraceOptions(cmd: Command, recorded = false): Command {
  const live = !recorded;
  if (recorded) cmd.argument('<trace>', 'a JSON-lines trace (--output-json, --output-json-file, pktpath record)');
  cmd.argument('[expression...]', 'pcap-filter expression, as tcpdump takes it (e.g. "tcp and dst port 80")');

  cmd.optionsGroup(recorded ? 'Filters (on the recorded events):' : GROUP.filters)
    .option('--filter-src-ip <ip>', 'source IPv4/IPv6 address')
    .option('--filter-dst-ip <ip>', 'destination IPv4/IPv6 address')
    .option('--filter-proto <proto>', 'tcp, udp, icmp, icmp6, sctp or a protocol number')
    .option('--filter-src-port <port>', 'source port')
    .option('--filter-dst-port <port>', 'destination port')
    .option('--filter-netns <netns>', recorded ? 'only this network namespace: NAME or inode:N (repeatable)'
      : 'only this network namespace: /proc/PID/ns/net, /run/netns/NAME, NAME or inode:N (repeatable)', collect, [])
    .option('--filter-pod <ns/name>', recorded ? 'only this pod\'s namespace, as the trace named it (repeatable)'
      : 'only this Kubernetes pod\'s network namespace, named by the container runtime, followed as it comes and goes (repeatable)', collect, [])
    .option('--filter-mark <value[/mask]>', 'only packets whose skb mark matches')
    .option('--filter-ifname <name>', recorded ? 'only packets on this device' : 'only packets on this device (in --filter-netns, else in the current namespace)');
  if (live) {
    cmd
      .option('--filter-skb-expr <expr>', 'only skbs whose fields match, read from the kernel\'s BTF: e.g. \'skb->len > 1000 && skb->dev->name == "eth0"\'')
      .option('--filter-tunnel-pcap-l2 <expr>', 'only tunnel packets (VXLAN, Geneve, GRE of Ethernet) whose inner frame matches this tcpdump expression')
      .option('--filter-tunnel-pcap-l3 <expr>', 'only tunnel packets (VXLAN, Geneve, GRE, IP-in-IP) whose inner IP packet matches this tcpdump expression')
      .option('--filter-track-skb', 'keep following a matched skb whatever its headers become (NAT, tunnels), and its clones and copies ' +
        '(copies seen made only where the kernel allows fexit)')
      .option('--filter-track-skb-by-stackid', 'follow skbs as --filter-track-skb (which it implies), and also an skb seen on the kernel stack of a followed one while that ' +
        'one lives: the skb a veth\'s XDP or a bridge makes anew (as pwru; any point that runs on the kernel stack)')
      .option('--filter-trace-tc', 'trace the other tc programs on the traced devices: entry, exit and the verdict each returns (needs fentry)')
      .option('--filter-trace-xdp', 'trace the XDP programs on the traced devices: entry, exit and the verdict each returns (needs fentry)')
      .option('--filter-track-bpf-helpers', 'with --filter-trace-tc/-xdp, also the helper calls those programs make on a matching packet, at the kernel ' +
        'function each lands in (bpf_redirect, htab_map_update_elem, __htab_map_lookup_elem...; needs fentry). Helpers the verifier inlines are ' +
        'not seen: array map lookups, bpf_get_smp_processor_id...');
  }
  cmd
    .option('--filter-ip <ip>', 'source or destination address')
    .option('--filter-port <port>', 'source or destination port');
  if (recorded) cmd.option('--filter-func <regex>', 'only events at points whose name the regex finds (e.g. "kfree_skb|tc:")');

  cmd.optionsGroup(GROUP.output)
    .option('--output-tuple', 'print the 5-tuple')
    .option('--output-meta', 'print netns, mark, interface, protocol, MTU and length')
    .option('--output-stack', live ? 'print the kernel stack at tracepoints and function probes (kprobe, kprobe-multi, fentry); tc and netfilter-link ' +
      'points have none: their program types may not read one' : 'print the kernel stack (where it was recorded)')
    .option('--output-caller', 'print the calling function where the point has one')
    .option('--output-limit-lines <n>', 'stop after n events')
    .option('--output-json', 'write JSON lines (schema v1)')
    .addOption(new Option('--timestamp <mode>', 'none, current, relative or absolute').default('none'))
    .option('--output-tcp-flags', 'print TCP flags in the tuple')
    .option('--output-ct', 'print conntrack state, status and NAT where a point knows them (netfilter hooks, tc lookups)')
    .option('--output-netns-names', 'with --output-meta, name each namespace by its pod (NAMESPACE/NAME, from the container runtime) or its /run/netns name where it has one, not its inode')
    .option('--output-settings', 'print each traced namespace\'s settings that decide where packets go (forwarding, rp_filter, ' +
      'proxy_arp, ARP replies, devices, routes, rules) at the start, and a line whenever they change (JSON output carries them always)');
  if (live) {
    cmd
      .option('--output-nft', 'show the nft rules (iptables-nft too) each traced packet meets, from nftables\' own tracing; ' +
        'adds a table inet pktpath_trace_PID in each traced namespace, removed on exit')
      .option('--output-packet', 'capture each packet\'s first --pcap-snaplen bytes into its JSON record, ' +
        'so `pktpath show` can filter on any header and write pcapng later')
      .option('--explain', 'at the end of each packet\'s journey that did not arrive, say why: a cause, a sentence and the ' +
        'evidence (docs/EXPLAIN.md); in JSON, an explanation record after it');
  }
  // The optional sections' own (src/output/sections/).
  for (const o of sectionOptions()) if (live || !o.live) cmd.option(o.flags, o.description);
  cmd.addOption(new Option('--color <when>', 'auto, always or never').default('auto'));

  cmd.optionsGroup(GROUP.files)
    .option('--output-file <path>', 'write to a file instead of stdout');
  addOutputFileOptions(cmd);
  if (recorded) {
    addPwruTuningOptions(cmd, false);
    return cmd.optionsGroup('Options:');
  }

  cmd.optionsGroup(GROUP.attach)
    .option('--filter-func <regex>', 'observation points to attach: those whose name the regex finds, as pwru (e.g. "kfree_skb|tc:", "nf:ipv4")')
    .option('--attach <families>', `families to attach: ${FAMILIES.join(',')} (functions where the kernel lets them be probed); ` +
      'none: only the BPF programs --filter-trace-tc/--filter-trace-xdp trace')
    .option('--tc-devices <which>', `where tc observers go: all (every device), programs (devices where other tc programs run: the rest show at the ` +
      `device tracepoints), auto, the default: all up to ${TC_DEVICE_BUDGET} devices, with --filter-netns/--filter-pod/--filter-ifname, or with tc asked for by --attach ` +
      'or --filter-func, else programs)')
    .option('--backend <backend>', `how kernel functions are probed: ${BACKEND_CHOICES.join(', ')} (the best this kernel allows, found by trying)`)
    .option('--filter-non-skb-funcs <funcs>', 'also probe these kernel functions that take no skb (comma-separated, as pwru): each call is ' +
      'reported, tied to the skb, while a wanted skb\'s function runs on its CPU (fentry and fexit on the skb functions: narrow them with --filter-func; repeatable)', collect, [])
    .option('--kmods <modules>', 'probe the skb functions of these kernel modules too (comma-separated, e.g. nf_conntrack,vxlan; as pwru: the core kernel\'s only by default)')
    .option('--all-kmods', 'probe the skb functions of every loaded kernel module too')
    .option('--kernel-btf <path>', 'read the kernel\'s types from this BTF file instead of /sys/kernel/btf/vmlinux (CO-RE relocations, fields, drop reasons)');

  cmd.optionsGroup(GROUP.session)
    .option('--profile <name>', 'start from a named option set (`pktpath profiles` lists them: drops, nat, ifdump and ~/.config/pktpath/profiles/NAME.yaml); options given here win')
    .option('--ring-size <size>', 'ring buffer size (rounded up to a power of two)', '16M')
    .option('--duration <seconds>', 'stop after this many seconds')
    .option('--ready-file <path>', 'create this file once everything is attached (removed on exit), for scripts and readiness probes')
    .option('--cri-socket <path>', 'the container runtime\'s CRI socket, which names pods (default: /run/containerd/containerd.sock, else /run/crio/crio.sock)');
  addPwruTuningOptions(cmd, true);
  return cmd.optionsGroup('Options:');
}

/** pwru's tuning flags, each in the group --help shows it in; `live`: those only a live trace has. */
function addPwruTuningOptions(cmd: Command, live: boolean): void {
  cmd.addOption(option(GROUP.output, '--netns-names-max-length <n>',
    `with --output-netns-names, cut namespace names in text to n characters (${MIN_NETNS_NAME_CHARS} at least, as pwru; JSON keeps them whole)`));
  if (!live) return;
  cmd
    .addOption(option(GROUP.filters, '--filter-xdp-expr <expr>', 'with --filter-trace-xdp, only frames whose xdp_buff fields match, as --filter-skb-expr: e.g. \'xdp->rxq->dev->ifindex == 9\' (needs fentry)'))
    .addOption(option(GROUP.output, '--set-percpu-buf <bytes>',
      `room for each struct --output-skb and --output-skb-shared-info print, in bytes (${MIN_DUMP_ROOM}-${MAX_DUMP_ROOM}; ` +
      `default ${DEFAULT_DUMP_ROOM.skb} for the skb, ${DEFAULT_DUMP_ROOM.sharedInfo} for its shared info)`))
    .addOption(option(GROUP.attach, '--filter-kprobe-batch <n>', 'kprobes attached between two looks at signals and progress, with the kprobe backend (default 64)'))
    .addOption(option(GROUP.session, '--debug', 'print libbpf\'s messages and the verifier\'s log of every program loaded to stderr (escaped)'));
}
