/** The flags bin/pktpath's `#!` line starts Node with, read from it: the benches run Node as a trace does. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function pktpathNodeFlags(): string[] {
  const first = readFileSync(fileURLToPath(new URL('../../bin/pktpath', import.meta.url)), 'utf8').split('\n', 1)[0]!;
  return / node((?: --[\w-]+(?:=\S+)?)*)$/.exec(first)?.[1]!.trim().split(' ').filter(Boolean) ?? [];
}
