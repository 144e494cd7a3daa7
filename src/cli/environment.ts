/**
 * How pktpath runs a command for its user (`record`): found before anything
 * is attached, tied to pktpath's life, in pktpath's own environment with what
 * bin/pktpath took away for its start put back.
 */
import fs from 'node:fs';
import path from 'node:path';

/** util-linux's setpriv sets the parent-death signal, then execs the command: Node's spawn cannot run prctl in the child. */
const SETPRIV = '/usr/bin/setpriv';

/**
 * The argv that runs `command` so that it is killed (SIGKILL) when pktpath
 * dies, however it dies: PR_SET_PDEATHSIG. It reaches the command itself;
 * processes the command starts in the background are the command's to end.
 */
export function diesWithPktpath(command: readonly string[]): string[] {
  return fs.existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...command] : [...command];
}

/** Why `name` cannot be run, as a shell would say it (127: not found, 126: not executable); null when it can. */
export function unrunnable(name: string, env: NodeJS.ProcessEnv = process.env): { status: 126 | 127; why: string } | null {
  const candidates = name.includes('/') ? [name] : (env.PATH ?? '/usr/bin:/bin').split(':').map((d) => path.join(d || '.', name));
  let found = false;
  for (const c of candidates) {
    let st: fs.Stats;
    try {
      st = fs.statSync(c);
    } catch {
      continue;
    }
    if (st.isDirectory()) continue;
    found = true;
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return null;
    } catch {
      // Another directory of PATH may hold one that can be run.
    }
  }
  return found ? { status: 126, why: 'permission denied (not executable)' } : { status: 127, why: 'command not found' };
}
const SET_ASIDE = { NODE_EXTRA_CA_CERTS: 'PKTPATH_NODE_EXTRA_CA_CERTS' } as const;

export function commandEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [name, aside] of Object.entries(SET_ASIDE)) {
    const value = out[aside];
    delete out[aside];
    if (value !== undefined && value !== '' && out[name] === undefined) out[name] = value;
  }
  return out;
}
