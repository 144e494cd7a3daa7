/**
 * The verdict section for people and files: text
 * (`REDIRECT peer → eth0@pod-b by cni_redirect#412`) and JSON, and back.
 * What a verdict is, and what a traced program's return code means, is in
 * src/decode/verdict.ts.
 */
import type { RedirectKind, TcVerdict, VerdictAction, VerdictTarget } from '../decode/verdict.js';
import { escapeText } from './escape.js';

const ACTION_TEXT: Readonly<Record<VerdictAction, string>> = {
  pass: 'PASS', next: 'NEXT', drop: 'DROP', redirect: 'REDIRECT', stolen: 'STOLEN', unknown: 'VERDICT?',
};

function programsText(by: TcVerdict['by']): string {
  const names = by.map((p) => `${p.name || 'prog'}#${p.id}`);
  return names.length <= 1 ? names.join('') : `one of ${names.join(', ')}`;
}

const where = (t: VerdictTarget) =>
  `${t.ifname || `if${t.ifindex}`}${t.netnsName ? `@${t.netnsName}` : t.netns ? `@${t.netns}` : ''}`;

/**
 * `REDIRECT peer → eth0@pod-b by cni_redirect#412 [inferred]`, `DROP by cni_policy#7 (TC_INGRESS)`.
 * Escaped: device, namespace and program names are anyone's.
 */
export function formatVerdict(v: TcVerdict): string {
  let s = ACTION_TEXT[v.action];
  if (v.target) s += ` ${v.target.kind === 'unknown' ? '' : `${v.target.kind} `}\u2192 ${where(v.target)}${v.target.direction === 'egress' ? ' (egress)' : ''}`;
  if (v.by.length > 0) s += ` by ${programsText(v.by)}`;
  if (v.reason !== null) s += ` (${v.reason})`;
  if (v.inferred) s += ' [inferred]';
  return escapeText(s);
}

export interface JsonVerdict {
  action: VerdictAction;
  target: { kind: RedirectKind; direction: 'ingress' | 'egress'; ifindex: number; iface: string; netns: number; netns_name: string } | null;
  by: Array<{ id: number; name: string }>;
  reason: string | null;
  inferred: boolean;
  evidence: string;
}

export function toJsonVerdict(v: TcVerdict): JsonVerdict {
  const t = v.target;
  return {
    action: v.action,
    target: t && { kind: t.kind, direction: t.direction, ifindex: t.ifindex, iface: t.ifname, netns: t.netns, netns_name: t.netnsName },
    by: v.by.map((p) => ({ id: p.id, name: p.name })),
    reason: v.reason,
    inferred: v.inferred,
    evidence: v.evidence,
  };
}

/** toJsonVerdict's inverse (`pktpath show`). */
export function verdictFromJson(v: JsonVerdict): TcVerdict {
  const t = v.target;
  return {
    action: v.action,
    target: t && { kind: t.kind, direction: t.direction, ifindex: t.ifindex, ifname: t.iface, netns: t.netns, netnsName: t.netns_name },
    by: v.by.map((p) => ({ id: p.id, name: p.name })),
    reason: v.reason,
    inferred: v.inferred,
    evidence: v.evidence,
  };
}
