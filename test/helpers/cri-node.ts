/**
 * A Kubernetes node's container side, for the tests: Debian's containerd
 * started with a configuration of its own (root, state and socket in a
 * temporary folder), in a network namespace of the test's (its CNI bridge is
 * there, not on the machine), a pause image built here (busybox-static as
 * /pause, imported with ctr), and pods created and removed through the CRI
 * calls the kubelet makes. cleanup() removes all of it.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import type * as GrpcType from '@grpc/grpc-js';
import type * as LoaderType from '@grpc/proto-loader';
import { CRI_PROTO, sandboxNetnsPath } from '../../src/kernel/cri.js';

const require = createRequire(import.meta.url);
const PAUSE_IMAGE = 'pktpath.test/pause:1';
const SUBNET = '198.51.100.0/24';

export interface TestPod {
  name: string;
  namespace: string;
  uid: string;
  id: string;
  netnsPath: string;
  netns: number;
  ip: string;
}

type Stub = Record<string, (req: object, opts: { deadline: number }, done: (e: Error | null, v: unknown) => void) => void> & { close(): void };

/** Why containerd cannot run here, or null. */
export function containerdMissing(): string | null {
  for (const bin of ['containerd', 'ctr', 'nsenter']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed (scripts/setup.sh installs containerd)`;
  }
  for (const plugin of ['bridge', 'host-local', 'loopback']) {
    if (!fs.existsSync(`/usr/lib/cni/${plugin}`)) return `the CNI plugin ${plugin} is missing (containernetworking-plugins)`;
  }
  // The pause image holds busybox alone: it must need no libc.
  if (!fs.existsSync('/bin/busybox') || spawnSync('ldd', ['/bin/busybox']).status === 0) return 'a static /bin/busybox is missing (busybox-static)';
  return null;
}

/** A docker-archive image whose /pause (busybox sh) sleeps: what the sandbox runs. */
function buildPauseImage(dir: string): string {
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'sys', 'etc', 'tmp']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  fs.writeFileSync(path.join(rootfs, 'pause'), '#!/bin/busybox sh\nexec /bin/busybox sleep 2147483647\n', { mode: 0o755 });
  const layer = path.join(dir, 'layer.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', layer, '.']);
  const sha = (file: string) => execFileSync('sha256sum', [file]).toString().split(' ')[0]!;
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Entrypoint: ['/pause'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] },
  });
  fs.writeFileSync(path.join(dir, 'config.json'), config);
  const configName = `${sha(path.join(dir, 'config.json'))}.json`;
  fs.renameSync(path.join(dir, 'config.json'), path.join(dir, configName));
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [PAUSE_IMAGE], Layers: ['layer.tar'] }]));
  const archive = path.join(dir, 'pause.tar');
  execFileSync('tar', ['-C', dir, '-cf', archive, 'manifest.json', configName, 'layer.tar']);
  return archive;
}

export class CriNode {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pktpath-pods-'));
  readonly socket = path.join(this.dir, 'containerd.sock');
  /** The node's network namespace (containerd, the shims, the CNI bridge). */
  readonly nodeNetns = `pkpods-${process.pid}-node`;
  private containerd: ChildProcess | null = null;
  private stub: Stub | null = null;
  readonly pods = new Map<string, TestPod>();
  /** Pod namespaces ever created, for cleanup (their mounts under /run/netns). */
  private readonly netnsPaths = new Set<string>();
  readonly timings: Record<string, number> = {};
  /** containerd 1.6 puts its shims' sockets under /run/containerd/s whatever its state dir: removed after if it made them. */
  private readonly madeRunDir = !fs.existsSync('/run/containerd');

  async start(): Promise<void> {
    let t = performance.now();
    execFileSync('ip', ['netns', 'add', this.nodeNetns]);
    execFileSync('ip', ['-n', this.nodeNetns, 'link', 'set', 'lo', 'up']);
    const cni = path.join(this.dir, 'cni');
    fs.mkdirSync(cni);
    fs.writeFileSync(path.join(cni, '10-pktpath.conflist'), JSON.stringify({
      cniVersion: '0.4.0', name: 'pktpath-test', plugins: [
        { type: 'bridge', bridge: 'pkpt-br0', isGateway: true, ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET }]], dataDir: path.join(this.dir, 'ipam') } },
        { type: 'loopback' },
      ],
    }));
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    fs.writeFileSync(path.join(this.dir, 'config.toml'), [
      'version = 2',
      `root = "${this.dir}/root"`,
      `state = "${this.dir}/state"`,
      '[grpc]', `  address = "${this.socket}"`,
      '[ttrpc]', `  address = "${this.socket}.ttrpc"`,
      // This machine's root lacks CAP_SYS_RESOURCE: no negative oom_score_adj for the sandbox.
      `[${cri}]`, `  sandbox_image = "${PAUSE_IMAGE}"`, '  restrict_oom_score_adj = true', '  disable_apparmor = true',
      `[${cri}.cni]`, '  bin_dir = "/usr/lib/cni"', `  conf_dir = "${cni}"`,
      `[${cri}.containerd]`, '  snapshotter = "overlayfs"', '  default_runtime_name = "runc"',
      `[${cri}.containerd.runtimes.runc]`, '  runtime_type = "io.containerd.runc.v2"',
      // runc's state beside the rest, not under /run/containerd.
      `[${cri}.containerd.runtimes.runc.options]`, `  Root = "${this.dir}/runc"`,
      '',
    ].join('\n'));
    const log = fs.openSync(path.join(this.dir, 'containerd.log'), 'w');
    // nsenter changes the network namespace alone: the namespaces containerd names under /run/netns are the machine's to see.
    this.containerd = spawn('nsenter', [`--net=/run/netns/${this.nodeNetns}`, 'containerd', '--config', path.join(this.dir, 'config.toml')],
      { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const deadline = Date.now() + 15_000;
    while (!fs.existsSync(this.socket)) {
      if (Date.now() > deadline || this.containerd.exitCode !== null) {
        throw new Error(`containerd did not start: ${fs.readFileSync(path.join(this.dir, 'containerd.log'), 'utf8').slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.timings.containerdStartMs = performance.now() - t;
    t = performance.now();
    execFileSync('ctr', ['-a', this.socket, '-n', 'k8s.io', 'images', 'import', buildPauseImage(path.join(this.dir, 'image'))], { stdio: 'pipe' });
    this.timings.imageMs = performance.now() - t;
    const grpc = require('@grpc/grpc-js') as typeof GrpcType;
    const loader = require('@grpc/proto-loader') as typeof LoaderType;
    const def = loader.loadSync(CRI_PROTO, { longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: new (...a: unknown[]) => Stub } } };
    this.stub = new pkg.runtime.v1.RuntimeService(`unix://${this.socket}`, grpc.credentials.createInsecure());
  }

  private call<T>(method: string, req: object, ms = 60_000): Promise<T> {
    return new Promise((resolve, reject) => this.stub![method]!(req, { deadline: Date.now() + ms }, (e, v) => (e ? reject(e) : resolve(v as T))));
  }

  /** RunPodSandbox as the kubelet calls it: the pod's metadata, hostname, log directory. */
  async runPod(name: string, namespace = 'default'): Promise<TestPod> {
    const t = performance.now();
    const uid = `0e1d2c3b-${process.pid.toString(16).padStart(4, '0').slice(-4)}-4000-8000-${name.replace(/[^a-z0-9]/g, '').padEnd(12, '0').slice(0, 12)}`;
    const { podSandboxId: id } = await this.call<{ podSandboxId: string }>('RunPodSandbox', {
      config: { metadata: { name, namespace, uid, attempt: 0 }, hostname: name, logDirectory: path.join(this.dir, 'logs', name) },
    });
    const status = await this.call<{ info: Record<string, string> }>('PodSandboxStatus', { podSandboxId: id, verbose: true });
    const netnsPath = sandboxNetnsPath(status.info);
    if (netnsPath === null) throw new Error(`no network namespace in the status of pod ${name}`);
    this.netnsPaths.add(netnsPath);
    const addrs = JSON.parse(execFileSync('nsenter', [`--net=${netnsPath}`, 'ip', '-j', '-4', 'addr', 'show', 'eth0']).toString()) as
      Array<{ addr_info: Array<{ local: string }> }>;
    const pod = { name, namespace, uid, id, netnsPath, netns: fs.statSync(netnsPath).ino, ip: addrs[0]!.addr_info[0]!.local };
    this.pods.set(name, pod);
    this.timings[`runPod ${name} ms`] = performance.now() - t;
    return pod;
  }

  /** StopPodSandbox then RemovePodSandbox, as the kubelet does when a pod is deleted. */
  async removePod(name: string): Promise<void> {
    const pod = this.pods.get(name);
    if (!pod) return;
    const t = performance.now();
    await this.call('StopPodSandbox', { podSandboxId: pod.id });
    await this.call('RemovePodSandbox', { podSandboxId: pod.id });
    this.pods.delete(name);
    this.timings[`removePod ${name} ms`] = performance.now() - t;
  }

  /** Runs a command in a pod's network namespace. */
  inPod(name: string, cmd: string[]): { code: number; out: string } {
    const pod = this.pods.get(name)!;
    const r = spawnSync('nsenter', [`--net=${pod.netnsPath}`, ...cmd], { encoding: 'utf8', timeout: 20_000 });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
  }

  /** Removes every pod, containerd, its shims, mounts and folders, the pods' and the node's namespaces. */
  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    for (const name of [...this.pods.keys()]) {
      try {
        await this.removePod(name);
      } catch (e) {
        problems.push(`pod ${name}: ${(e as Error).message}`);
      }
    }
    this.stub?.close();
    if (this.containerd && this.containerd.exitCode === null) {
      const exited = new Promise((r) => this.containerd!.once('exit', r));
      this.containerd.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.containerd.exitCode === null) this.containerd.kill('SIGKILL');
    }
    // Shims of pods that could not be removed outlive containerd: ours are those started with our socket.
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.startsWith('/usr/bin/containerd-shim') && cmdline.includes(this.socket)) {
          // Its sandbox's pause process first: killing the shim alone leaves it to init.
          for (const child of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
            try {
              if (fs.readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === pid) process.kill(Number(child), 'SIGKILL');
            } catch {
              // Gone meanwhile.
            }
          }
          process.kill(Number(pid), 'SIGKILL');
          problems.push(`shim ${pid} left running`);
        }
      } catch {
        // Gone meanwhile.
      }
    }
    for (const p of this.netnsPaths) {
      if (!fs.existsSync(p)) continue;
      spawnSync('umount', [p]);
      fs.rmSync(p, { force: true });
    }
    // Overlay, shm and rootfs mounts under containerd's root and state, deepest first.
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(this.dir)).sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    spawnSync('ip', ['netns', 'del', this.nodeNetns]);
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (this.madeRunDir) {
      for (const d of ['/run/containerd/s', '/run/containerd']) {
        try {
          fs.rmdirSync(d);
        } catch {
          if (fs.existsSync(d)) problems.push(`${d} is not empty: ${fs.readdirSync(d).join(' ')}`);
        }
      }
    }
    return problems;
  }
}
