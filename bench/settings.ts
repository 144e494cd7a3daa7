/**
 * What following the traced namespaces' settings costs (root): in namespaces
 * of the bench's own, each with a veth pair and loopback, the CPU time of one
 * whole reading (sysctls, devices, addresses, routes, rules), of one check of
 * the values no message announces (from the files held open, and by path
 * inside the namespace), and the idle cost of following 0, 1 and N of them
 * (monitors read every 0.5 s, the check every 2 s) beside nothing. Prints
 * figures; asserts nothing.
 *
 *   node dist/bench/settings.js [namespaces, default 20] [seconds idle, default 20]
 */
import { Lab } from '../src/lab/lab.js';
import { resolveNetns, withNetns } from '../src/kernel/netns.js';
import { UnannouncedFiles, readSettings, unannouncedChanged } from '../src/kernel/settings.js';
import { SettingsFollower } from '../src/trace/settings.js';

const COUNT = Number(process.argv[2] ?? 20);
const SECONDS = Number(process.argv[3] ?? 20);

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function perCall(n: number, fn: () => void): string {
  fn();
  const t0 = cpuMs();
  for (let i = 0; i < n; i++) fn();
  return `${((cpuMs() - t0) / n).toFixed(3)} ms CPU`;
}

const lab = new Lab(`stb${process.pid % 10000}`);
try {
  const names: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const ns = lab.netns(`n${i}`);
    lab.execSync(ns, ['ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    lab.execSync(ns, ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'v0']);
    lab.execSync(ns, ['ip', 'link', 'set', 'v0', 'up']);
    lab.execSync(ns, ['ip', 'link', 'set', 'v1', 'up']);
    names.push(ns);
  }
  const all = names.map((n) => resolveNetns(n));
  const first = all[0]!;
  const settings = readSettings(first).settings;
  console.log(`${COUNT} namespaces of ${settings.devices.length} devices, ${settings.routes.length} routes each`);
  console.log(`whole reading:                 ${perCall(200, () => readSettings(first))} per namespace`);
  console.log(`unannounced check, by path:    ${perCall(500, () => withNetns(first.path, () => unannouncedChanged(settings)))} per namespace`);
  const files = withNetns(first.path, () => UnannouncedFiles.openHere(settings.devices.map((d) => d.name)))!;
  console.log(`unannounced check, files open: ${perCall(500, () => files.read())} per namespace`);
  files.close();

  for (const n of [0, 1, COUNT]) {
    const follower = new SettingsFollower(() => 0n, () => {}, (line) => console.log(line));
    for (const netns of all.slice(0, n)) follower.add(netns);
    follower.release();
    follower.start();
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = cpuMs();
    const w0 = performance.now();
    const before = { ...follower.costs };
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const used = cpuMs() - t0;
    const ms = performance.now() - w0;
    console.log(`following ${String(n).padStart(3)}: ${(used / (ms / 1000)).toFixed(2)} ms CPU a second (${(used / ms * 100).toFixed(3)} % of a CPU); ` +
      `checks ${follower.costs.checks - before.checks} (${(follower.costs.checkCpuMs - before.checkCpuMs).toFixed(1)} ms), readings ${follower.costs.reads - before.reads}`);
    follower.close();
  }
} finally {
  lab.cleanup();
}
