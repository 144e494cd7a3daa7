/**
 * Expectation files (YAML, schema/expect.v1.json): parsed with `yaml`,
 * validated with `ajv` against the published schema, then turned into typed
 * expectations. Every problem is one line naming the file and line.
 */
import fs from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import { LineCounter, isNode, parseDocument } from 'yaml';
import { InputFileRefused, MiB, readRegularText } from '../bpf/input-file.js';
import { protocolName } from '../decode/protocols.js';
import { InputFileError } from './errors.js';
import { type NameTest, globTest, linearRegExp } from './patterns.js';
import { type Cidr, parseCidr } from './vars.js';

// ajv is CommonJS: under NodeNext its class is the default export's `default`.
const Ajv2020 = Ajv2020Module.default;

export const EXPECT_SCHEMA_URL = new URL('../../../schema/expect.v1.json', import.meta.url);

export class ExpectFileError extends InputFileError {
  override name = 'ExpectFileError';
}

/** Aliases (`*name`) resolved at most, counting what each expands to: YAML's own bound on "billion laughs". */
const MAX_ALIAS_COUNT = 100;

export type Ending = 'dropped' | 'ended';

/** An address or CIDR, with a port or not. */
export interface Endpoint {
  net: Cidr;
  port: number | null;
  text: string;
}

/**
 * POINT[@NETNS[/IFACE]], POINT with `*` for any run of characters; or, in a
 * merged trace, NODE:DEVICE[@POD|@NETNS] (any point on that device of that
 * node). Point names have colons too (`tc:ingress`): a text that reads both
 * ways holds where either reading does.
 */
export interface PointPattern {
  point: NameTest;
  netns: string | null;
  iface: string | null;
  /** The NODE:DEVICE reading, where the text has that shape. */
  device: { node: string; iface: string; where: string | null } | null;
  text: string;
}

/** NODE:DEVICE[@WHERE]: a node's name (DNS-1123), a device name (no `:`, `@`, `/`, `*`), a pod `NAMESPACE/NAME` or a namespace. */
const NODE_DEVICE = /^([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?):([^:@/*\s]+)(?:@(.+))?$/;

export interface Match {
  proto?: string;
  src?: Endpoint;
  dst?: Endpoint;
  sport?: number;
  dport?: number;
  flags?: string[];
  passes?: PointPattern;
  ends?: Ending;
  reason?: string;
}

export interface Count {
  min: number;
  max: number;
  text: string;
}

export interface Expectation {
  name: string;
  /** The line it starts on, for reports. */
  line: number;
  match: Match;
  connection: boolean;
  count: Count;
  passes?: PointPattern[];
  avoids?: PointPattern[];
  reachesSocket?: boolean;
  ends?: Ending;
  reason?: string;
  ct?: string[];
  dnat?: Endpoint;
  snat?: Endpoint;
  /** What explain says of it: a cause code, or `none`. */
  cause?: string;
}

export interface Expectations {
  file: string;
  vars: string[];
  varNetns: string | null;
  expect: Expectation[];
}

let validate: ReturnType<InstanceType<typeof Ajv2020>['compile']> | null = null;

function schemaValidator() {
  if (validate === null) {
    const ajv = new Ajv2020({ allErrors: false, allowUnionTypes: true });
    validate = ajv.compile(JSON.parse(fs.readFileSync(EXPECT_SCHEMA_URL, 'utf8')) as object);
  }
  return validate;
}


export function parseEndpoint(text: string): Endpoint | null {
  const t = text.trim();
  let addr = t;
  let port: number | null = null;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  const v4 = /^([0-9.]+(?:\/\d+)?):(\d+)$/.exec(t);
  if (v6) {
    addr = v6[1]!;
    port = v6[2] !== undefined ? Number(v6[2]) : null;
  } else if (v4) {
    addr = v4[1]!;
    port = Number(v4[2]);
  }
  if (port !== null && port > 65535) return null;
  const net = parseCidr(addr);
  return net ? { net, port, text: t } : null;
}

export function parsePointPattern(text: string): PointPattern {
  const at = text.indexOf('@');
  const point = at < 0 ? text : text.slice(0, at);
  const place = at < 0 ? null : text.slice(at + 1);
  const slash = place === null ? -1 : place.indexOf('/');
  const nd = NODE_DEVICE.exec(text);
  return {
    point: globTest(point),
    netns: place === null ? null : slash < 0 ? place : place.slice(0, slash),
    iface: place === null || slash < 0 ? null : place.slice(slash + 1),
    device: nd ? { node: nd[1]!, iface: nd[2]!, where: nd[3] ?? null } : null,
    text,
  };
}

function parseCount(c: unknown): Count {
  if (c === undefined) return { min: 1, max: Infinity, text: 'at least 1' };
  if (typeof c === 'number') return { min: c, max: c, text: `exactly ${c}` };
  const o = c as { at_least?: number; at_most?: number; exactly?: number };
  if (o.at_least !== undefined) return { min: o.at_least, max: Infinity, text: `at least ${o.at_least}` };
  if (o.at_most !== undefined) return { min: 0, max: o.at_most, text: `at most ${o.at_most}` };
  return { min: o.exactly!, max: o.exactly!, text: `exactly ${o.exactly}` };
}

/** Parses and checks an expectation file's text. */
export function parseExpectations(file: string, text: string): Expectations {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOf = (offset: number) => lines.linePos(offset).line;
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ExpectFileError(file, lineOf(e.pos[0]), `not YAML: ${e.message.split('\n')[0]}`);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch {
    // yaml refuses aliases that would expand past the count; nothing else throws here.
    throw new ExpectFileError(file, 0, 'aliases that expand too far (a "billion laughs"?): write the values out');
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ExpectFileError(file, 0, 'is empty or not a mapping: it needs `expect:` and a list of expectations');
  }
  /** The line of the node at a schema path (`/expect/0/match/dst`), or of its nearest parent that exists. */
  const lineAt = (path: Array<string | number>): number => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return lineOf(node.range[0]);
    }
    return 0;
  };
  const check = schemaValidator();
  if (!check(data)) {
    const err = check.errors![0]!;
    const path = err.instancePath.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    const extra = (err.params as { additionalProperty?: string }).additionalProperty;
    const at = err.instancePath.slice(1).replace(/\//g, '.');
    const what = extra !== undefined ? `unknown key '${extra}'`
      // count's forms are alternatives: say them all, not the first one's complaint.
      : /\/count(\/|$)/.test(err.instancePath) ? `${at.replace(/\.count.*$/, '.count')}: a number, or one of { at_least: N }, { at_most: N }, { exactly: N }`
      : `${at ? `${at} ` : ''}${err.message ?? 'is not valid'}`;
    throw new ExpectFileError(file, lineAt(extra !== undefined ? [...path, extra] : path), what);
  }
  const raw = data as {
    vars?: string[]; var_netns?: string;
    expect: Array<Record<string, unknown> & { name: string; match?: Record<string, unknown> }>;
  };
  const endpoint = (path: Array<string | number>, v: unknown): Endpoint => {
    const e = parseEndpoint(String(v));
    if (!e) throw new ExpectFileError(file, lineAt(path), `'${String(v)}' is not an address, CIDR or address:port`);
    return e;
  };
  for (const [i, v] of (raw.vars ?? []).entries()) {
    if (!parseCidr(v)) throw new ExpectFileError(file, lineAt(['vars', i]), `vars: '${v}' is not an address or CIDR`);
  }
  if (raw.var_netns !== undefined) {
    try {
      linearRegExp(raw.var_netns, true);
    } catch (e) {
      throw new ExpectFileError(file, lineAt(['var_netns']), `var_netns: '${raw.var_netns}' ${(e as Error).message}`);
    }
  }
  const expect = raw.expect.map((x, i): Expectation => {
    const at = (...p: Array<string | number>) => ['expect', i, ...p];
    const m = x.match ?? {};
    const match: Match = {};
    // As journeys name protocols: by name where pktpath has one, else the number.
    if (m.proto !== undefined) match.proto = typeof m.proto === 'number' ? protocolName(m.proto) ?? String(m.proto) : m.proto as string;
    if (m.src !== undefined) match.src = endpoint(at('match', 'src'), m.src);
    if (m.dst !== undefined) match.dst = endpoint(at('match', 'dst'), m.dst);
    if (m.sport !== undefined) match.sport = m.sport as number;
    if (m.dport !== undefined) match.dport = m.dport as number;
    if (m.flags !== undefined) match.flags = (m.flags as string).split('|');
    if (m.passes !== undefined) match.passes = parsePointPattern(m.passes as string);
    if (m.ends !== undefined) match.ends = m.ends as Ending;
    if (m.reason !== undefined) match.reason = m.reason as string;
    const e: Expectation = {
      name: x.name, line: lineAt(at()), match, connection: x.connection === true, count: parseCount(x.count),
    };
    if (x.passes !== undefined) e.passes = (x.passes as string[]).map(parsePointPattern);
    if (x.avoids !== undefined) e.avoids = (x.avoids as string[]).map(parsePointPattern);
    if (x.reaches_socket !== undefined) e.reachesSocket = x.reaches_socket as boolean;
    if (x.ends !== undefined) e.ends = x.ends as Ending;
    if (x.reason !== undefined) e.reason = x.reason as string;
    if (x.ct !== undefined) e.ct = x.ct as string[];
    if (x.dnat !== undefined) e.dnat = endpoint(at('dnat'), x.dnat);
    if (x.snat !== undefined) e.snat = endpoint(at('snat'), x.snat);
    if (x.cause !== undefined) e.cause = x.cause as string;
    return e;
  });
  return { file, vars: raw.vars ?? [], varNetns: raw.var_netns ?? null, expect };
}

/** The largest expectation file read: one is a few KiB. */
export const EXPECT_FILE_LIMIT = MiB;

export function loadExpectations(file: string): Expectations {
  let text: string;
  try {
    text = readRegularText(file, EXPECT_FILE_LIMIT, 'an expectation file is a few KiB');
  } catch (e) {
    if (e instanceof InputFileRefused) throw new ExpectFileError(file, 0, e.what);
    throw e;
  }
  return parseExpectations(file, text);
}
