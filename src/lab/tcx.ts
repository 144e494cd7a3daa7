/**
 * Another program's tc program held on a device for the demo and the tests:
 * ./tcx-attach.js loads it and holds its tcx link in a process of its own
 * (the link goes with the process: cleanup() of the lab ends it).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './lab.js';

// Paths from the lab/ directory hold from the bundle too (scripts/build.sh).
const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface TcxProgram {
  /** The object file and the program in it. */
  object: string;
  program: string;
  ifname: string;
  direction: 'ingress' | 'egress';
  /** The whole .rodata, set before load. */
  rodata?: Buffer;
  /** First in the device's chain (else last). */
  first?: boolean;
}

/** Attaches `p` in namespace `ns`; resolves with its program id and a way to take it off. */
export async function holdTcx(lab: Lab, ns: string, p: TcxProgram): Promise<{ id: number; detach(): void }> {
  const child = lab.spawn(ns, [process.execPath, path.join(HERE, '../lab/tcx-attach.js'), p.object, p.program, p.ifname, p.direction,
    p.rodata ? p.rodata.toString('hex') : '-', ...(p.first ? ['first'] : [])]);
  return { id: await attached(child), detach: () => child.kill('SIGTERM') };
}

/** Waits for the tcx holder to say `attached <id>`. */
function attached(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`tcx-attach did not attach: ${err.trim()}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /attached (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcx-attach exited (${code}): ${err.trim()}`));
    });
  });
}
