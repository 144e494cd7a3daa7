/** libnftables (libnftables.so.1), bound with koffi on first use: only --output-nft and the inventory need it. */
import koffi from 'koffi';
import { loadLibrary } from './library.js';

/**
 * libnftables (the library behind `nft`): nft commands run in the network
 * namespace of the thread that created the context (its netlink socket is
 * opened then), with output and errors captured as text.
 */
export interface NftContextHandle {
  /** Runs nft commands; the output on success, else the error text. */
  run(commands: string): { ok: true; output: string } | { ok: false; error: string };
  free(): void;
}

/** nft_ctx_output_set_flags(): no counter values, handles (`# handle N`), chain priorities as numbers. */
export const NftOutput = { stateless: 1 << 2, handle: 1 << 3, numericPriority: 1 << 8 } as const;

interface Libnftables {
  newContext(outputFlags: number): NftContextHandle;
}

let nftLib: Libnftables | null = null;

/** Binds libnftables on first use: only --output-nft and the inventory need it. */
export function libnftables(): Libnftables {
  if (nftLib) return nftLib;
  const so = loadLibrary('libnftables', 'libnftables.so.1', { debian: 'libnftables1', fedora: 'nftables' });
  koffi.opaque('nft_ctx');
  const ctxNew = so.func('nft_ctx *nft_ctx_new(uint32_t flags)');
  const ctxFree = so.func('void nft_ctx_free(nft_ctx *ctx)');
  const setFlags = so.func('void nft_ctx_output_set_flags(nft_ctx *ctx, uint32_t flags)');
  const bufferOutput = so.func('int nft_ctx_buffer_output(nft_ctx *ctx)');
  const bufferError = so.func('int nft_ctx_buffer_error(nft_ctx *ctx)');
  const output = so.func('const char *nft_ctx_get_output_buffer(nft_ctx *ctx)');
  const error = so.func('const char *nft_ctx_get_error_buffer(nft_ctx *ctx)');
  const runCmd = so.func('int nft_run_cmd_from_buffer(nft_ctx *ctx, const char *buf)');
  nftLib = {
    newContext(outputFlags) {
      let ctx: unknown = ctxNew(0);
      if (!ctx) throw new Error('nft_ctx_new failed');
      setFlags(ctx, outputFlags);
      bufferOutput(ctx);
      bufferError(ctx);
      return {
        run(commands) {
          if (ctx === null) throw new Error('nft context already freed');
          const rc = runCmd(ctx, commands) as number;
          // Reading a buffer resets it: read both every time.
          const out = (output(ctx) as string | null) ?? '';
          const err = (error(ctx) as string | null) ?? '';
          return rc === 0 ? { ok: true, output: out } : { ok: false, error: err.trim() || `nft failed (${rc})` };
        },
        free() {
          if (ctx === null) return;
          ctxFree(ctx);
          ctx = null;
        },
      };
    },
  };
  return nftLib;
}
