/**
 * The environment of the commands pktpath runs for its user (`record`):
 * its own, with what bin/pktpath took away for its start put back.
 */
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
