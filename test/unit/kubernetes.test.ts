/**
 * deploy/kubernetes/*.yaml against Kubernetes' own OpenAPI schemas (the
 * validators of kubernetes-models): every object valid, every field one the
 * schema knows (the schemas accept unknown fields, which the API server
 * drops or refuses: a misspelt `readOnly` would be neither), and what pktpath
 * needs on a node held (privileges, mounts, readiness on --ready-file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { root } from '../helpers/probe-btf.js';

const DIR = join(root, 'deploy/kubernetes');
const VERSION = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };
/** A model's validation: throws naming the path of what is wrong. */
type Validate = (o: Obj) => void;

const MODELS: Record<string, Validate> = {
  'v1/Namespace': (o) => new Namespace(o as never).validate(),
  'v1/ConfigMap': (o) => new ConfigMap(o as never).validate(),
  'apps/v1/DaemonSet': (o) => new DaemonSet(o as never).validate(),
  'batch/v1/Job': (o) => new Job(o as never).validate(),
};

function validatorOf(o: Obj): Validate {
  const v = MODELS[`${String(o.apiVersion)}/${String(o.kind)}`];
  assert.ok(v, `${String(o.apiVersion)} ${String(o.kind)}: no schema for this kind here (add its model)`);
  return v;
}

const manifests = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort().flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((doc) => {
    assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
    return { file, object: doc.toJSON() as Obj };
  }));

/** Paths (a/b/0/c) of every value under `o`. */
function paths(o: Json, at: (string | number)[] = []): (string | number)[][] {
  if (o === null || typeof o !== 'object') return [];
  const entries: [string | number, Json][] = Array.isArray(o) ? o.map((v, i) => [i, v]) : Object.entries(o);
  return entries.flatMap(([k, v]) => [[...at, k], ...paths(v, [...at, k])]);
}

/**
 * Fields the schema does not know: each value is replaced by one of a type no
 * field of its place takes (an array for a scalar or an object, an object for
 * an array); the schema refuses it where the field is known, and lets it pass
 * where it is not.
 */
export function unknownFields(o: Obj, validate: Validate): string[] {
  const unknown: string[] = [];
  for (const path of paths(o)) {
    if (typeof path[path.length - 1] === 'number') continue;
    const copy = structuredClone(o);
    let parent = copy as Json;
    for (const k of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[k]!;
    const last = path[path.length - 1] as string;
    const old = (parent as Obj)[last]!;
    (parent as Obj)[last] = Array.isArray(old) ? {} : [[]];
    try {
      validate(copy);
      unknown.push(path.join('/'));
    } catch {
      // Refused: the field is the schema's.
    }
  }
  return unknown;
}

const podSpecOf = (o: Obj): IPodSpec => ((o.spec as Obj).template as unknown as { spec: IPodSpec }).spec;
const byKind = (kind: string) => manifests.filter((m) => m.object.kind === kind);

test('every manifest is valid against Kubernetes\' schema of its kind', () => {
  assert.deepEqual([...new Set(manifests.map((m) => m.object.kind))].sort(), ['ConfigMap', 'DaemonSet', 'Job', 'Namespace']);
  for (const { file, object } of manifests) {
    assert.doesNotThrow(() => validatorOf(object)(object), `${file}: ${String(object.kind)}`);
  }
});

test('every field of every manifest is one Kubernetes knows; a misspelt one is found', () => {
  for (const { file, object } of manifests) {
    assert.deepEqual(unknownFields(object, validatorOf(object)), [], `${file}: fields unknown to ${String(object.kind)}`);
  }
  const ds = structuredClone(byKind('DaemonSet')[0]!.object);
  const c = podSpecOf(ds).containers[0] as unknown as Obj;
  (c.securityContext as Obj).readOnlyRootFilesytem = true;
  assert.deepEqual(unknownFields(ds, validatorOf(ds)), ['spec/template/spec/containers/0/securityContext/readOnlyRootFilesytem']);
});

test('the pods: privileged on the host\'s network and PIDs, the image of this version, limits, read-only host mounts', () => {
  for (const { file, object } of [...byKind('DaemonSet'), ...byKind('Job')]) {
    const pod = podSpecOf(object);
    assert.equal(pod.hostNetwork, true, file);
    assert.equal(pod.hostPID, true, file);
    const [c] = pod.containers;
    assert.equal(c!.image, `pktpath:${VERSION}`, `${file}: the image of package.json's version`);
    assert.equal(c!.securityContext?.privileged, true, file);
    assert.equal(c!.securityContext?.readOnlyRootFilesystem, true, file);
    assert.ok(c!.resources?.requests?.memory && c!.resources.limits?.memory && c!.resources.limits.cpu, `${file}: requests and limits`);
    const hostVolumes = new Set((pod.volumes ?? []).filter((v) => v.hostPath).map((v) => v.name));
    const mounts = c!.volumeMounts ?? [];
    assert.deepEqual(mounts.filter((m) => hostVolumes.has(m.name) && m.readOnly !== true).map((m) => m.mountPath), [], `${file}: host paths mounted writable`);
    assert.deepEqual(mounts.filter((m) => hostVolumes.has(m.name)).map((m) => m.mountPath).sort(), ['/run/netns', '/sys/kernel/btf'], file);
    // HOME (profiles) and --ready-file are on the one writable volume.
    assert.equal(c!.env?.find((e) => e.name === 'HOME')?.value, '/run/pktpath', file);
  }
});

test('the DaemonSet: on chosen nodes, ready once pktpath says it attached (--ready-file)', () => {
  const [ds] = byKind('DaemonSet');
  const pod = podSpecOf(ds!.object);
  assert.deepEqual(pod.nodeSelector, { 'pktpath/trace': 'true' });
  const c = pod.containers[0]!;
  const args = c.args ?? [];
  const ready = args[args.indexOf('--ready-file') + 1];
  assert.ok(ready?.startsWith('/run/pktpath/'), 'the ready file is on the writable volume');
  const probe = c.readinessProbe?.exec?.command ?? [];
  assert.ok(probe.some((word) => word.includes(`existsSync('${ready}')`)), `the readiness probe looks at ${ready}: ${probe.join(' ')}`);
});

test('the one-shot Job: one node by nodeName, its filter and seconds from the ConfigMap trace-config.yaml makes', () => {
  const [job] = byKind('Job');
  const pod = podSpecOf(job!.object);
  assert.equal(pod.restartPolicy, 'Never');
  // trace-nodes.sh replaces node-1, and it appears nowhere else.
  const text = readFileSync(join(DIR, 'trace-job.yaml'), 'utf8');
  assert.equal(pod.nodeName, 'node-1');
  assert.equal((job!.object.metadata as Obj).name, 'pktpath-trace-node-1');
  assert.equal(text.split('\n').filter((l) => !l.trimStart().startsWith('#') && l.includes('node-1')).length, 2);
  const [config] = byKind('ConfigMap');
  const keys = Object.keys(config!.object.data as Obj).sort();
  const refs = (pod.containers[0]!.env ?? []).flatMap((e) => (e.valueFrom?.configMapKeyRef ? [e.valueFrom.configMapKeyRef] : []));
  assert.deepEqual(refs.map((r) => r.name), refs.map(() => (config!.object.metadata as Obj).name));
  assert.deepEqual(refs.map((r) => r.key).sort(), keys);
  for (const v of ['$(TRACE_SECONDS)', '$(TRACE_FILTER)']) assert.ok(pod.containers[0]!.args!.includes(v), v);
});

test('trace-nodes.sh refuses what it would pass to sed or kubectl unchecked, before calling kubectl', () => {
  const script = join(DIR, 'trace-nodes.sh');
  // PATH without kubectl: a call to it would exit 127.
  const run = (...args: string[]) => spawnSync('/bin/bash', [script, ...args], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  for (const [args, message] of [
    [['30', 'host 192.0.2.1'], /usage: .*SECONDS 'TCPDUMP EXPRESSION' NODE/],
    [['30s', 'host 192.0.2.1', 'node-a'], /SECONDS must be a whole number/],
    [['30', 'host 192.0.2.1', 'node-a', 'x/e'], /'x\/e' is not a node name/],
    [['30', 'host 192.0.2.1', 'Node_A'], /'Node_A' is not a node name/],
  ] as const) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
