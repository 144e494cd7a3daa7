/**
 * A VLAN between two namespaces over a veth, for the tests, on kernels with or
 * without VLAN devices: the tags are pushed at each end's tc egress and taken
 * off at its ingress by `vlan_tag.bpf.o` (fixtures/datapath), where they sit
 * as a VLAN subinterface's would (an 802.1Q id, and QinQ's 802.1ad id outside it).
 */
import path from 'node:path';
import type { Lab } from './lab.js';
import { holdTcx } from './tcx.js';

export interface VlanTags {
  /** The 802.1Q id. */
  id: number;
  /** QinQ: the 802.1ad id outside it. */
  outer?: number;
}

/** Tags every frame `ifname` in `ns` sends and untags what it receives. */
export async function tagDevice(lab: Lab, objects: string, ns: string, ifname: string, tags: VlanTags): Promise<void> {
  const object = path.join(objects, 'vlan_tag.bpf.o');
  const rodata = Buffer.alloc(4);
  rodata.writeUInt16LE(tags.id, 0);
  rodata.writeUInt16LE(tags.outer ?? 0, 2);
  await Promise.all([
    holdTcx(lab, ns, { object, program: 'vlan_push', ifname, direction: 'egress', rodata }),
    holdTcx(lab, ns, { object, program: 'vlan_pop', ifname, direction: 'ingress', rodata }),
  ]);
}
