/** pktpath's exit codes: a normal stop, a runtime failure, bad usage or input. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
