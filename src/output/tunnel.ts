/** The tunnel section in text (`vxlan vni=42 inner 10.0.0.1->10.0.0.2(icmp)`) and JSON. */
import type { TunnelInfo } from '../decode/tunnel.js';
import { escapeText } from './escape.js';
import { type JsonTuple, formatTuple, jsonTuple, tupleFromJson } from './tuple.js';

export type { TunnelInfo };

export function formatTunnel(t: TunnelInfo): string {
  let s = t.kind;
  if (t.vni !== null) s += (t.kind === 'gre' ? ' key=' : ' vni=') + t.vni;
  return escapeText(s) + ' inner ' + (t.inner === null ? '-' : formatTuple(t.inner, { tcpFlags: false }));
}

export interface JsonTunnel {
  kind: TunnelInfo['kind'];
  /** VXLAN/Geneve VNI, GRE key; null without one. */
  vni: number | null;
  inner: JsonTuple | null;
}

export function toJsonTunnel(t: TunnelInfo): JsonTunnel {
  return { kind: t.kind, vni: t.vni, inner: jsonTuple(t.inner) };
}

export function tunnelFromJson(t: JsonTunnel): TunnelInfo {
  return { kind: t.kind, vni: t.vni, inner: t.inner === null ? null : tupleFromJson(t.inner) };
}
