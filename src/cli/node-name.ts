/**
 * The node a trace was made on (`record --node`, else the host name): a
 * DNS-1123 subdomain, as Kubernetes names nodes, so that traces of several
 * nodes are told apart by a name a cluster also uses.
 */
import os from 'node:os';
import { escapeText } from '../output/escape.js';
import { UsageError } from './values.js';

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Whether `name` is a DNS-1123 subdomain: dot-separated labels of lowercase letters, digits and '-', 253 characters at most. */
export function isNodeName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((label) => LABEL.test(label));
}

const RULE = "lowercase letters, digits, '-' and '.' (a DNS-1123 subdomain, as Kubernetes names nodes)";

/** `--node`'s value checked, or the host name (lower case) when there is none. */
export function nodeName(given: string | undefined, hostname = os.hostname()): string {
  if (given !== undefined) {
    if (!isNodeName(given)) throw new UsageError(`--node: '${escapeText(given)}' is not a node name: ${RULE}`);
    return given;
  }
  const host = hostname.toLowerCase();
  if (!isNodeName(host)) throw new UsageError(`the host name '${escapeText(hostname)}' is not a node name (${RULE}); name the node with --node NAME`);
  return host;
}
