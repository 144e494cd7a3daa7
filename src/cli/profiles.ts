/**
 * Profiles: named option sets (`pktpath --profile drops`), built in or in
 * YAML files under ~/.config/pktpath/profiles/NAME.yaml:
 *
 *   description: where packets are dropped, and by whom
 *   options:
 *     filter-func: kfree_skb
 *     output-stack: true
 *
 * A profile becomes command-line options placed before the user's own, so
 * anything given on the command line wins. Every problem names the file and
 * line, before anything is attached.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Node } from 'yaml';
import { InputFileRefused, MiB, readRegularText } from '../bpf/input-file.js';
import { didYouMean } from '../filter/did-you-mean.js';
import { UsageError } from './values.js';

export interface Profile {
  name: string;
  description: string;
  /** Option long names (without --) and their values; true for a flag. */
  options: Array<[string, string | true]>;
  /** 'built-in', or the file it was read from. */
  source: string;
}

/**
 * Options that write, replace or delete files, and what they do: a profile file
 * (perhaps someone else's) may not give them, the command line may. The
 * built-in profiles are pktpath's own, and not held to this (ifdump writes a pcapng).
 */
const WRITES_FILES: ReadonlyMap<string, string> = new Map([
  ['output-file', 'writes files'],
  ['output-pcap', 'writes files'],
  ['output-json-file', 'writes files'],
  ['out', 'writes files'],
  ['ready-file', 'creates and removes a file'],
  ['force', 'replaces files'],
  ['output-file-max-size', 'renames and removes files'],
  ['output-file-max-backups', 'removes files'],
  ['output-file-compress', 'rewrites files'],
  ['output-file-max-age', 'deletes files'],
]);

/** The largest profile file read: one is a few lines. */
export const PROFILE_FILE_LIMIT = MiB;

/** What a profile may set: the long options of the command, and whether each takes a value. */
export type KnownOptions = ReadonlyMap<string, { takesValue: boolean }>;

export const BUILT_IN_PROFILES: readonly Profile[] = [
  {
    name: 'drops',
    description: 'where packets are freed as dropped, why, and the kernel stack that dropped them (a drop summary at the end)',
    options: [['filter-func', '^kfree_skb$'], ['output-stack', true], ['output-tuple', true]],
    source: 'built-in',
  },
  {
    name: 'nat',
    description: 'conntrack state and NAT at every point, following each skb through its translations',
    options: [['output-ct', true], ['filter-track-skb', true], ['output-tuple', true]],
    source: 'built-in',
  },
  {
    name: 'pwru',
    description: 'pwru\'s default columns: the metadata and the tuple (pktpath prints SKB CPU PROCESS FUNC unless asked)',
    options: [['output-meta', true], ['output-tuple', true]],
    source: 'built-in',
  },
  {
    name: 'ifdump',
    description: 'the packets at every tc hook, as tcpdump would see them on each device, into pktpath-ifdump.pcapng',
    options: [['filter-func', '^tc:'], ['output-pcap', 'pktpath-ifdump.pcapng'], ['output-tuple', true], ['output-meta', true]],
    source: 'built-in',
  },
];

/** Where user profiles live: $XDG_CONFIG_HOME/pktpath/profiles, else ~/.config/pktpath/profiles. */
export function profileDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(base, 'pktpath', 'profiles');
}

/** `yaml` costs every start ~30 ms to import: it is loaded when a profile file is read. */
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');

/** Parses a profile file's text; throws UsageError `profile FILE:LINE: what`. */
export function parseProfile(name: string, file: string, text: string, known: KnownOptions): Profile {
  const { LineCounter, isAlias, isMap, isScalar, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  // An alias (`*name`) stands for the node it names: resolved where a value is read, one at a time, never expanded.
  const deref = (node: unknown) => (isAlias(node) ? node.resolve(doc) : node);
  const lineOf = (node: Node | null | undefined, fallback = 1) =>
    node?.range ? lines.linePos(node.range[0]).line : fallback;
  const fail = (line: number, what: string): never => {
    throw new UsageError(`profile ${file}:${line}: ${what}`);
  };
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    fail(lines.linePos(err.pos[0]).line, err.message.split('\n')[0]!);
  }
  const root = doc.contents;
  if (!isMap(root)) fail(lineOf(root), 'a profile is a mapping with `description` and `options`');
  let description = '';
  const options: Profile['options'] = [];
  for (const pair of (root as import('yaml').YAMLMap).items) {
    const keyNode = deref(pair.key);
    const value = deref(pair.value);
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    const keyLine = lineOf(pair.key as Node);
    if (key === 'description') {
      if (!isScalar(value) || typeof value.value !== 'string') fail(keyLine, 'description: a line of text');
      description = String((value as import('yaml').Scalar).value);
    } else if (key === 'options') {
      if (!isMap(value)) fail(keyLine, 'options: a mapping of option names (without --) to values');
      for (const opt of (value as import('yaml').YAMLMap).items) {
        const optKey = deref(opt.key);
        const optName = isScalar(optKey) ? String(optKey.value).replace(/^--/, '') : '';
        const line = lineOf(opt.key as Node, keyLine);
        if (optName === 'profile') fail(line, 'a profile cannot name another profile');
        const writes = WRITES_FILES.get(optName);
        if (writes) fail(line, `${optName} ${writes}: give it on the command line, not in a profile`);
        const spec = known.get(optName);
        if (!spec) {
          const hint = didYouMean(optName, known.keys());
          fail(line, `unknown option '${optName}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
        }
        const optValue = deref(opt.value);
        const v = isScalar(optValue) ? optValue.value : undefined;
        if (spec!.takesValue) {
          if (v === undefined || v === null || typeof v === 'object' || typeof v === 'boolean') {
            fail(line, `${optName}: needs a value (a string or a number)`);
          }
          options.push([optName, String(v)]);
        } else {
          if (v !== true && v !== false) fail(line, `${optName}: a flag, true or false`);
          if (v === true) options.push([optName, true]);
        }
      }
    } else {
      fail(keyLine, `unknown key '${key}' (a profile has description and options)`);
    }
  }
  return { name, description, options, source: file };
}

/** The profiles in the user's directory, by name; unreadable or broken files throw when asked for. */
export function userProfileFiles(dir = profileDir()): Map<string, string> {
  const out = new Map<string, string>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const f of names.sort()) {
    const m = /^(.+)\.ya?ml$/.exec(f);
    if (m) out.set(m[1]!, path.join(dir, f));
  }
  return out;
}

/** The profile files this process read: inputs of the run, which no output of it may replace. */
const filesRead: string[] = [];
export const profileFilesRead = (): readonly string[] => filesRead;

/** A profile by name (user profiles shadow built-ins) or by path (it holds a / or ends in .yaml). */
export function loadProfile(ref: string, known: KnownOptions, dir = profileDir()): Profile {
  const isPath = ref.includes('/') || /\.ya?ml$/.test(ref);
  const file = isPath ? ref : userProfileFiles(dir).get(ref);
  if (file === undefined) {
    const builtIn = BUILT_IN_PROFILES.find((p) => p.name === ref);
    if (builtIn) return builtIn;
    const names = [...BUILT_IN_PROFILES.map((p) => p.name), ...userProfileFiles(dir).keys()];
    const hint = didYouMean(ref, names);
    throw new UsageError(`--profile: no profile '${ref}'${hint ? ` (did you mean '${hint}'?)` : ''}; \`pktpath profiles\` lists them`);
  }
  let text: string;
  filesRead.push(file);
  try {
    text = readRegularText(file, PROFILE_FILE_LIMIT, 'a profile is a few lines');
  } catch (e) {
    if (e instanceof InputFileRefused) throw new UsageError(`profile ${file}: ${e.what}`);
    throw e;
  }
  return parseProfile(path.basename(file).replace(/\.ya?ml$/, ''), file, text, known);
}

/** A profile as the command-line options it stands for. */
export function profileArgs(p: Profile): string[] {
  return p.options.flatMap(([k, v]) => (v === true ? [`--${k}`] : [`--${k}`, v]));
}

/**
 * argv with each `--profile NAME` (or `--profile=NAME`) replaced by the
 * profile's options, placed before the user's own options (`at`: the index
 * of the first one), so the command line wins. Nothing after `--` is touched.
 */
export function expandProfiles(argv: string[], at: number, load: (ref: string) => Profile): string[] {
  const end = argv.indexOf('--') < 0 ? argv.length : argv.indexOf('--');
  const rest: string[] = [];
  const expanded: string[] = [];
  for (let i = at; i < end; i++) {
    const a = argv[i]!;
    let ref: string | undefined;
    if (a === '--profile') {
      ref = argv[++i];
      if (ref === undefined || ref.startsWith('--')) throw new UsageError('--profile: name a profile (`pktpath profiles` lists them)');
    } else if (a.startsWith('--profile=')) {
      ref = a.slice('--profile='.length);
    }
    if (ref !== undefined) expanded.push(...profileArgs(load(ref)));
    else rest.push(a);
  }
  return [...argv.slice(0, at), ...expanded, ...rest, ...argv.slice(end)];
}
