/**
 * The container runtime's CRI API (containerd, CRI-O) over its unix socket:
 * which pod sandbox holds which network namespace. The runtime is a program
 * pktpath does not trust: every call has a deadline, answers are bounded,
 * names are checked (DNS-1123) before anyone prints them.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as GrpcType from '@grpc/grpc-js';
import type * as LoaderType from '@grpc/proto-loader';

/** The few CRI messages pktpath reads, shipped beside the modules (and the bundle: both sit one folder deep). */
export const CRI_PROTO = fileURLToPath(new URL('../kernel/cri.proto', import.meta.url));
export const DEFAULT_CRI_SOCKETS = ['/run/containerd/containerd.sock', '/run/crio/crio.sock'] as const;
/** A hung runtime holds pktpath no longer than this per call. */
export const CRI_DEADLINE_MS = 2000;
/** The largest answer taken (a node runs a few hundred pods; their list is well below this). */
const MAX_MESSAGE_BYTES = 4 << 20;
const MAX_PODS = 4096;
const MAX_CONTAINERS = 256;

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

export interface Pod extends PodRef {
  sandboxId: string;
  /** Inode of its network namespace. */
  netns: number;
  /** Path of that namespace as the runtime gave it. */
  netnsPath: string;
  containers: string[];
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const UID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function isDns1123Label(s: string): boolean {
  return DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every((l) => DNS1123_LABEL.test(l));
}

/** `NS/NAME` of --filter-pod, checked as Kubernetes checks them. */
export function parsePodSelector(spec: string): { namespace: string; name: string } {
  const at = spec.indexOf('/');
  const namespace = at < 0 ? '' : spec.slice(0, at);
  const name = at < 0 ? '' : spec.slice(at + 1);
  if (!isDns1123Label(namespace) || !isDns1123Subdomain(name)) {
    throw new Error(`'${spec}' is not NAMESPACE/NAME (a DNS-1123 label, a slash, a DNS-1123 subdomain), e.g. default/web-0`);
  }
  return { namespace, name };
}

export const podLabel = (p: { namespace: string; name: string }): string => `${p.namespace}/${p.name}`;

/**
 * The network namespace path of a sandbox from PodSandboxStatus's verbose
 * `info` (containerd 1.6 and CRI-O: the sandbox's OCI runtime spec), else
 * its pause process's; null when neither is there.
 */
export function sandboxNetnsPath(info: Record<string, string>): string | null {
  const raw = info.info;
  if (typeof raw !== 'string' || raw.length > MAX_MESSAGE_BYTES) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    return null;
  }
  const d = doc as { runtimeSpec?: { linux?: { namespaces?: Array<{ type?: unknown; path?: unknown }> } }; pid?: unknown };
  const ns = d?.runtimeSpec?.linux?.namespaces;
  if (Array.isArray(ns)) {
    const net = ns.find((n) => n?.type === 'network');
    if (typeof net?.path === 'string' && net.path.startsWith('/') && net.path.length < 4096 && !net.path.includes('\0')) return net.path;
  }
  if (typeof d?.pid === 'number' && Number.isInteger(d.pid) && d.pid > 0) return `/proc/${d.pid}/ns/net`;
  return null;
}

type Call = (req: object, opts: { deadline: number }, done: (e: Error | null, v: unknown) => void) => void;
type Stub = Record<string, Call> & { close(): void };

let grpcModules: { grpc: typeof GrpcType; loader: typeof LoaderType } | null = null;

/** gRPC is loaded only where a runtime socket is asked (the bundle leaves it out: it weighs on every start). */
function grpcLibs(): { grpc: typeof GrpcType; loader: typeof LoaderType } {
  if (grpcModules) return grpcModules;
  const req = createRequire(import.meta.url);
  grpcModules = { grpc: req('@grpc/grpc-js') as typeof GrpcType, loader: req('@grpc/proto-loader') as typeof LoaderType };
  return grpcModules;
}

/** A CRI RuntimeService client on a unix socket; each call has CRI_DEADLINE_MS. */
export class CriClient {
  private readonly stub: Stub;

  constructor(readonly socket: string, private readonly deadlineMs = CRI_DEADLINE_MS) {
    const { grpc, loader } = grpcLibs();
    const def = loader.loadSync(CRI_PROTO, { keepCase: false, longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: new (...a: unknown[]) => Stub } } };
    this.stub = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.enable_retries': 0,
    });
  }

  call<T>(method: string, req: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.stub[method]!(req, { deadline: Date.now() + this.deadlineMs }, (e, v) => (e ? reject(e) : resolve(v as T)));
    });
  }

  /**
   * The ready pod sandboxes, each with its network namespace and containers;
   * sandboxes that fail a check are counted in `refused`. Those in `known` (by
   * sandbox id) are taken as they were: a list is one call, a new pod three.
   */
  async pods(known: ReadonlyMap<string, Pod> = new Map()): Promise<{ pods: Pod[]; refused: number }> {
    type Meta = { name: string; uid: string; namespace: string };
    const list = await this.call<{ items: Array<{ id: string; metadata: Meta | null; state: string }> }>('ListPodSandbox',
      { filter: { state: { state: 'SANDBOX_READY' } } });
    const pods: Pod[] = [];
    let refused = 0;
    for (const s of list.items.slice(0, MAX_PODS)) {
      const m = s.metadata;
      if (!m || !SANDBOX_ID.test(s.id) || !isDns1123Label(m.namespace) || !isDns1123Subdomain(m.name) || !UID.test(m.uid)) {
        refused++;
        continue;
      }
      const had = known.get(s.id);
      if (had) {
        pods.push(had);
        continue;
      }
      const status = await this.call<{ info: Record<string, string> }>('PodSandboxStatus', { podSandboxId: s.id, verbose: true });
      const netnsPath = sandboxNetnsPath(status.info ?? {});
      let netns = 0;
      try {
        if (netnsPath !== null) netns = fs.statSync(netnsPath).ino;
      } catch {
        // Gone between the two calls, or a sandbox on the host's network.
      }
      if (netns === 0) continue;
      const cs = await this.call<{ containers: Array<{ metadata: { name: string } | null }> }>('ListContainers', { filter: { podSandboxId: s.id } });
      const containers = cs.containers.slice(0, MAX_CONTAINERS).map((c) => c.metadata?.name ?? '').filter(isDns1123Label);
      pods.push({ namespace: m.namespace, name: m.name, uid: m.uid, sandboxId: s.id, netns, netnsPath: netnsPath!, containers });
    }
    return { pods, refused };
  }

  close(): void {
    this.stub.close();
  }
}
