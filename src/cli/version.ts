/** pktpath's version, as `--version` and recorded traces give it. */
export const VERSION = '0.1.0';
