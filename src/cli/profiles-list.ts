/** `pktpath profiles`: every profile --profile takes, where it comes from, and the options it stands for; exit 2 when one is broken. */
import { BUILT_IN_PROFILES, type KnownOptions, type Profile, loadProfile, profileArgs, profileDir, userProfileFiles } from './profiles.js';
import { escapeText } from '../output/escape.js';
import { EXIT_OK } from './exit.js';
import { UsageError } from './values.js';

export async function listProfiles(known: KnownOptions): Promise<number> {
  const users = userProfileFiles();
  const shown: Array<Profile | { name: string; source: string; broken: string }> = [];
  for (const [name, file] of users) {
    try {
      shown.push(loadProfile(file, known));
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      shown.push({ name, source: file, broken: e.message });
    }
  }
  for (const p of BUILT_IN_PROFILES) if (!users.has(p.name)) shown.push(p);
  for (const p of shown) {
    if ('broken' in p) {
      process.stdout.write(`${escapeText(p.name)}\t(${escapeText(p.source)})\tbroken: ${escapeText(p.broken)}\n`);
      continue;
    }
    process.stdout.write(`${escapeText(p.name)}\t(${escapeText(p.source)})\t${escapeText(p.description)}\n\t${escapeText(profileArgs(p).join(' '))}\n`);
  }
  process.stderr.write(`pktpath: user profiles are read from ${profileDir()}/NAME.yaml\n`);
  // A broken profile is bad input, said once more where errors go: --profile would refuse it.
  const broken = shown.filter((p) => 'broken' in p);
  if (broken.length > 0) throw new UsageError(`${broken[0]!.broken}${broken.length > 1 ? ` (and ${broken.length - 1} more broken: listed above)` : ''}`);
  return EXIT_OK;
}
