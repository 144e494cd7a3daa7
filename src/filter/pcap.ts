/**
 * tcpdump expressions → classic BPF, compiled by libpcap itself (through
 * koffi), so pktpath filters mean exactly what they mean to tcpdump.
 */
import koffi from 'koffi';

/** One classic BPF instruction (struct bpf_insn). */
export interface CbpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Link types pktpath compiles for: frames with an Ethernet header, or packets starting at the IP header. */
export const LinkType = { ETHERNET: 1, RAW: 12 } as const;
export type LinkTypeValue = (typeof LinkType)[keyof typeof LinkType];

const SNAPLEN = 262144;
const NETMASK_UNKNOWN = 0xffffffff;

let lib: ReturnType<typeof bind> | null = null;

function bind() {
  const so = koffi.load('libpcap.so.0.8');
  koffi.opaque('pcap_t');
  const Insn = koffi.struct('pktpath_bpf_insn', { code: 'uint16_t', jt: 'uint8_t', jf: 'uint8_t', k: 'uint32_t' });
  const Program = koffi.struct('pktpath_bpf_program', { bf_len: 'uint32_t', bf_insns: 'void *' });
  return {
    Insn,
    Program,
    open_dead: so.func('pcap_t *pcap_open_dead(int linktype, int snaplen)'),
    compile: so.func('int pcap_compile(pcap_t *p, _Out_ pktpath_bpf_program *fp, const char *str, int optimize, uint32_t netmask)'),
    geterr: so.func('const char *pcap_geterr(pcap_t *p)'),
    freecode: so.func('void pcap_freecode(pktpath_bpf_program *fp)'),
    close: so.func('void pcap_close(pcap_t *p)'),
    /** libpcap's own interpreter, the reference for the translation. */
    bpf_filter: so.func('uint32_t bpf_filter(const pktpath_bpf_insn *pc, const uint8_t *p, uint32_t wirelen, uint32_t buflen)'),
  };
}

function pcap() {
  if (!lib) {
    try {
      lib = bind();
    } catch (e) {
      throw new Error(`cannot load libpcap (libpcap.so.0.8): ${(e as Error).message}; install libpcap0.8`);
    }
  }
  return lib;
}

export class FilterSyntaxError extends Error {
  override name = 'FilterSyntaxError';
}

/** Compiles a tcpdump expression for a link type; throws FilterSyntaxError with libpcap's message. */
export function compilePcap(expression: string, linkType: LinkTypeValue): CbpfInsn[] {
  const p = pcap();
  const handle = p.open_dead(linkType, SNAPLEN);
  if (!handle) throw new Error('pcap_open_dead failed');
  try {
    const program: { bf_len: number; bf_insns: unknown } = { bf_len: 0, bf_insns: null };
    if ((p.compile(handle, program, expression, 1, NETMASK_UNKNOWN) as number) < 0) {
      throw new FilterSyntaxError(p.geterr(handle) as string);
    }
    try {
      return koffi.decode(program.bf_insns, p.Insn, program.bf_len) as CbpfInsn[];
    } finally {
      p.freecode(program);
    }
  } finally {
    p.close(handle);
  }
}

/** Runs a classic program on a packet with libpcap's interpreter: the verdict tcpdump would give. */
export function pcapVerdict(program: CbpfInsn[], packet: Uint8Array, wireLen = packet.length): number {
  const p = pcap();
  return p.bpf_filter(program, packet, wireLen, packet.length) as number;
}

