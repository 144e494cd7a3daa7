/**
 * libpcap (libpcap.so.0.8), bound with koffi on first use: only runs with a
 * filter expression need it.
 */
import koffi from 'koffi';
import { loadLibrary } from './library.js';

/** libpcap: compile a tcpdump expression; run classic BPF with libpcap's own interpreter. */
export interface Libpcap {
  /** Classic BPF instructions, or libpcap's error message. */
  compile(linkType: number, snaplen: number, expression: string, netmask: number): { insns: CbpfInsnRaw[] } | { error: string };
  /** bpf_filter(3): the verdict of a classic program on a packet. */
  filter(program: CbpfInsnRaw[], packet: Uint8Array, wireLen: number): number;
}

/** struct bpf_insn of classic BPF. */
export interface CbpfInsnRaw {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

let pcapLib: Libpcap | null = null;

/** Binds libpcap on first use: only runs with a filter expression need it. */
export function libpcap(): Libpcap {
  if (pcapLib) return pcapLib;
  const so = loadLibrary('libpcap', 'libpcap.so.0.8', { debian: 'libpcap0.8', fedora: 'libpcap' });
  koffi.opaque('pcap_t');
  const Insn = koffi.struct('pktpath_bpf_insn', { code: 'uint16_t', jt: 'uint8_t', jf: 'uint8_t', k: 'uint32_t' });
  koffi.struct('pktpath_bpf_program', { bf_len: 'uint32_t', bf_insns: 'void *' });
  const openDead = so.func('pcap_t *pcap_open_dead(int linktype, int snaplen)');
  const compile = so.func('int pcap_compile(pcap_t *p, _Out_ pktpath_bpf_program *fp, const char *str, int optimize, uint32_t netmask)');
  const geterr = so.func('const char *pcap_geterr(pcap_t *p)');
  const freecode = so.func('void pcap_freecode(pktpath_bpf_program *fp)');
  const close = so.func('void pcap_close(pcap_t *p)');
  const bpfFilter = so.func('uint32_t bpf_filter(const pktpath_bpf_insn *pc, const uint8_t *p, uint32_t wirelen, uint32_t buflen)');
  pcapLib = {
    compile(linkType, snaplen, expression, netmask) {
      const handle = openDead(linkType, snaplen);
      if (!handle) throw new Error('pcap_open_dead failed');
      try {
        const program: { bf_len: number; bf_insns: unknown } = { bf_len: 0, bf_insns: null };
        if ((compile(handle, program, expression, 1, netmask) as number) < 0) return { error: geterr(handle) as string };
        try {
          return { insns: koffi.decode(program.bf_insns, Insn, program.bf_len) as CbpfInsnRaw[] };
        } finally {
          freecode(program);
        }
      } finally {
        close(handle);
      }
    },
    filter(program, packet, wireLen) {
      return bpfFilter(program, packet, wireLen, packet.length) as number;
    },
  };
  return pcapLib;
}
