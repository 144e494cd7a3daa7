/**
 * Colour: when to use it (one rule for every stream) and the roles text takes
 * in pktpath's output, each one style. Without colour every style returns its
 * text unchanged, so formatters never branch on it.
 */
import { Chalk } from 'chalk';
import type { ColorMode } from './config.js';

export type ColorLevel = 1 | 2 | 3;
export type Style = (s: string) => string;

/** --color for one stream: `auto` colours a terminal unless NO_COLOR is set. */
export function colorFor(mode: ColorMode, isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return isTTY && !('NO_COLOR' in env && env.NO_COLOR !== '');
}

export interface Styles {
  /** Column headers, block headers. */
  header: Style;
  /** What matters less: time deltas. */
  dim: Style;
  /** Drops and their reasons. */
  drop: Style;
  /** A packet that arrived. */
  ok: Style;
  /** Lost records, unfinished packets, values that changed. */
  warn: Style;
}

export function stylesFor(color: boolean, level: ColorLevel = 1): Styles {
  const c = new Chalk({ level: color ? level : 0 });
  return { header: c.bold, dim: c.dim, drop: c.red, ok: c.green, warn: c.yellow };
}

/** The escape sequences a style wraps text in, taken apart once so hot paths only concatenate. */
export type Paint = readonly [open: string, close: string];

export function paintOf(style: Style): Paint {
  const [open, close] = style('\u0000').split('\u0000');
  return [open ?? '', close ?? ''];
}

// Packet colours; red is left out because it marks drops.
const PALETTE = [
  'cyan', 'green', 'yellow', 'blue', 'magenta', 'cyanBright', 'greenBright', 'yellowBright', 'blueBright', 'magentaBright',
] as const;

export const PACKET_COLORS = PALETTE.length;

/** One paint per packet colour; null without colour. */
export function packetPaints(color: boolean, level: ColorLevel = 1): Paint[] | null {
  if (!color) return null;
  const c = new Chalk({ level });
  return PALETTE.map((name) => paintOf(c[name]));
}
