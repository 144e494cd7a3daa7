/**
 * pktpath's image as a node runs it: scripts/image-build.sh (Debian bases by mmdebstrap, cached in
 * /var/cache/pktpath-image; the package of `npm pack`; deploy/Containerfile) into podman storage of
 * this test's own, then the image run as the DaemonSet runs it — privileged, the host's PID and
 * network namespaces, /sys/kernel/btf and /run/netns from the host (and /sys/fs/bpf), no /proc of
 * the host's (with the host's PID namespace the container's own shows its processes), a read-only
 * root with a tmpfs for HOME: doctor, and a trace of a ping between two namespaces made here.
 * Everything made here (containers, images, storage, its mounts, namespaces, podman's cache of blob
 * digests) is removed at the end; no container has a network of podman's (no bridge, no CNI state).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import type { JsonRecord } from '../../src/output/json.js';
import { root } from '../helpers/probe-btf.js';
import { waitNoPrograms } from '../helpers/tracer.js';
import { validateJsonLine } from '../helpers/schema.js';

const lab = new Lab('im31');
const dir = mkdtempSync('/var/tmp/im31-');
const IMAGE = 'localhost/pktpath:0.1.0';
const SRC = '203.0.113.41';
const DST = '203.0.113.42';
/** podman with this test's configuration and storage only, never the machine's. */
const env = {
  ...process.env,
  CONTAINERS_CONF: join(dir, 'containers.conf'),
  CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
  CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
  PKTPATH_IMAGE: IMAGE,
  PKTPATH_PACK_IGNORE_SCRIPTS: '1',
};
/** The DaemonSet's pod (deploy/kubernetes/daemonset.yaml) in podman's words. */
const AS_A_NODE = ['--rm', '--privileged', '--pid=host', '--network=host', '--read-only',
  '-v', '/sys/kernel/btf:/sys/kernel/btf:ro', '-v', '/sys/fs/bpf:/sys/fs/bpf', '-v', '/run/netns:/run/netns:ro,rslave',
  '--tmpfs', '/run/pktpath:size=16m', '-e', 'HOME=/run/pktpath'];
/** containers/image keeps root's cache of blob digests here, whatever the storage: removed after if made here. */
const BLOB_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';
const blobCacheMade = !existsSync(BLOB_CACHE);
const podmanBridge = (): boolean => execFileSync('ip', ['-br', 'link'], { encoding: 'utf8' }).includes('cni-podman');
const bridgeBefore = podmanBridge();
let nsA = '';
let nsB = '';

function podman(args: string[], timeout = 120_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('podman', args, { env, encoding: 'utf8', timeout });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Mount points at or under `dir` (podman's overlay and shm mounts), deepest first. */
function mountsUnder(top: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === top || m.startsWith(`${top}/`)).sort((a, b) => b.length - a.length);
}

before(() => {
  // The rlimits podman raises by default need CAP_SYS_RESOURCE, and crun refuses hybrid cgroups here.
  writeFileSync(env.CONTAINERS_CONF, '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' +
    'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n' + `tmp_dir = "${dir}/tmp"\n\n[network]\nnetwork_config_dir = "${dir}/networks"\n`);
  writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/runroot"\n`);
  writeFileSync(env.CONTAINERS_REGISTRIES_CONF, 'unqualified-search-registries = []\n');
  mkdirSync(join(dir, 'tmp'));
  const built = spawnSync('bash', [join(root, 'scripts/image-build.sh')], { cwd: root, env, encoding: 'utf8', timeout: 30 * 60_000 });
  process.stderr.write(built.stdout);
  assert.equal(built.status, 0, `scripts/image-build.sh failed:\n${built.stdout}${built.stderr}`);
  nsA = lab.netns('a');
  nsB = lab.netns('b');
  lab.veth({ ns: nsA, ifname: 'im31-a', addrs: [`${SRC}/24`] }, { ns: nsB, ifname: 'im31-b', addrs: [`${DST}/24`] });
});

after(async () => {
  lab.cleanup();
  podman(['rm', '--all', '--force']);
  podman(['rmi', '--all', '--force']);
  // The overlay driver keeps its home mounted on itself; a container's or an image's mount left is a fault.
  const stray = mountsUnder(dir).filter((m) => m !== join(dir, 'root/overlay'));
  const busy = mountsUnder(dir).filter((m) => spawnSync('umount', [m]).status !== 0);
  for (const m of busy) spawnSync('umount', ['--lazy', m]);
  rmSync(dir, { recursive: true, force: true });
  if (blobCacheMade) {
    rmSync(BLOB_CACHE, { force: true });
    for (const d of ['/var/lib/containers/cache', '/var/lib/containers']) spawnSync('rmdir', ['--ignore-fail-on-non-empty', d]);
  }
  if (!bridgeBefore) assert.equal(podmanBridge(), false, 'a podman network was made');
  assert.deepEqual(stray, [], 'mounts of podman\'s containers or images left behind');
  assert.deepEqual(busy, [], 'mounts under the storage still busy');
  assert.deepEqual(await waitNoPrograms(), [], 'programs of pktpath left loaded');
});

test('the image: Debian\'s Node 20, the runtime libraries, pktpath as its entrypoint, no compiler', () => {
  const inspect = JSON.parse(podman(['image', 'inspect', IMAGE]).stdout) as [{ Config: { Entrypoint: string[] } }];
  assert.deepEqual(inspect[0].Config.Entrypoint, ['pktpath']);
  const facts = podman(['run', '--rm', '--network=none', '--entrypoint', 'sh', IMAGE, '-c',
    'node --version; dpkg-query -W -f "\\${Package} \\${Version}\\n" nodejs libbpf1 libpcap0.8t64 libnftables1; ' +
    'command -v clang clang-19 bpftool npm gcc || true; command -v tar; pktpath --version']);
  assert.equal(facts.code, 0, facts.stderr);
  assert.match(facts.stdout, /^v20\./m, 'Node 20');
  assert.match(facts.stdout, /^nodejs \S+deb13/m, 'nodejs from Debian 13');
  for (const lib of ['libbpf1', 'libpcap0.8t64', 'libnftables1']) assert.match(facts.stdout, new RegExp(`^${lib.replaceAll('.', '\\.')} `, 'm'));
  assert.doesNotMatch(facts.stdout, /\/(clang|clang-19|bpftool|npm|gcc)$/m, 'a build tool in the image');
  assert.match(facts.stdout, /^\/usr\/bin\/tar$/m, 'tar, for `kubectl cp`');
  assert.match(facts.stdout, /^0\.1\.0$/m);
});

test('doctor in the container, as the DaemonSet runs it', () => {
  const r = podman(['run', ...AS_A_NODE, IMAGE, 'doctor']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /pktpath will use: skb tracepoints/);
  assert.match(r.stdout + r.stderr, /│ tracepoint +│ loads/);
});

test('a trace from the container of a ping between two namespaces of the host: the echo request arrives', async () => {
  const name = `im31-trace-${process.pid}`;
  const child = spawn('podman', ['run', '--name', name, ...AS_A_NODE, IMAGE, '--filter-netns', nsB, '--filter-ip', DST, '--output-json',
    '--ready-file', '/run/pktpath/ready'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    for (let i = 0; i < 1200 && !/pktpath: attached/.test(stderr) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /pktpath: attached/);
    const ready = podman(['exec', name, 'node', '-e', "process.exit(require('fs').existsSync('/run/pktpath/ready') ? 0 : 1)"]);
    assert.equal(ready.code, 0, `the DaemonSet's readiness probe fails: ${ready.stderr}`);
    assert.equal((await lab.exec(nsA, ['ping', '-c', '2', '-i', '0.2', '-W', '2', DST])).code, 0);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    // podman hands SIGINT on to pktpath (--sig-proxy).
    child.kill('SIGINT');
  }
  assert.equal(await exited, 0, stderr);
  const events = stdout.trim().split('\n').map((l) => {
    assert.equal(validateJsonLine(l), null, l);
    return JSON.parse(l) as JsonRecord;
  }).filter((e) => (e as { type?: string }).type === undefined);
  const requests = events.filter((e) => e.tuple?.saddr === SRC && e.tuple.daddr === DST && e.tuple.proto === 'icmp');
  assert.ok(requests.some((e) => e.func === 'netif_receive_skb' && e.netns_name === nsB), `no echo request received in ${nsB}:\n${stdout}`);
  assert.ok(events.every((e) => e.netns_name === nsB), 'an event outside the namespace pktpath was narrowed to');
  assert.equal(podman(['container', 'exists', name]).code, 1, 'the container is left behind');
});

test('nothing of pktpath stays on the host from the container: no program, no tc or netfilter hook in the namespaces', async () => {
  assert.deepEqual(await waitNoPrograms(), []);
  assert.equal(execFileSync('ip', ['-n', nsB, 'link', 'show', 'im31-b'], { encoding: 'utf8' }).includes('im31-b'), true);
  assert.equal(execFileSync('tc', ['-n', nsB, 'qdisc', 'show', 'dev', 'im31-b'], { encoding: 'utf8' }).includes('clsact'), false);
});
