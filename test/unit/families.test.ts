/** Attach families as a session combines them: their reports into the attached line, their following of namespaces and devices in one loop. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetlinkSocket } from '../../src/kernel/netlink.js';
import { combineReports } from '../../src/trace/families/family.js';
import { followTopology } from '../../src/trace/follow.js';
import { NameBook } from '../../src/trace/names.js';
import { attachedLine } from '../../src/trace/status.js';
import type { TopologyListener } from '../../src/trace/topology.js';

test("each family's links add up to the line's count, each family's figures in their places, the rest at none", () => {
  const state = combineReports([
    { links: 3, line: { tracepoints: 1, forgets: 2 } },
    { links: 4, line: { tcDevices: 2, tcFirst: 0 } },
    { links: 2, line: { nfNamespaces: 1, nfHookFunction: false, nfMoved: new Set(['-128→-127']) } },
  ]);
  assert.equal(state.links, 9);
  assert.equal(state.functions, 0);
  assert.equal(state.nftNamespaces, null);
  assert.equal(attachedLine(state, 12), 'pktpath: attached 9 links: 1 tracepoints, 2 frees watched for --filter-track-skb, tc on 2 devices, ' +
    'netfilter in 1 namespace (priorities -128→-127: others held them) (12 ms); Ctrl-C to stop');
  assert.equal(combineReports([]).links, 0);
});

test('a namespace or device that comes or goes is handed to each family in order, counted once, and said', () => {
  const calls: string[] = [];
  const family = (name: string): Partial<TopologyListener> => ({
    namespaceAdded: (netns, ifaces) => calls.push(`${name} +netns ${netns.inode} (${ifaces.length})`),
    namespaceRemoved: (netns) => calls.push(`${name} -netns ${netns.inode}`),
    deviceAdded: (_netns, iface) => calls.push(`${name} +${iface.name}`),
    deviceRemoved: (_netns, ifindex) => calls.push(`${name} -${ifindex}`),
  });
  const counts = { namespacesAdded: 0, namespacesRemoved: 0, devicesAdded: 0, devicesRemoved: 0 };
  const names = NameBook.of([]);
  const status: string[] = [];
  // A family with nothing to follow (tracepoints, functions) is an empty one.
  const listener = followTopology({ counts, names: () => names, families: [family('tc'), {}, family('nf')], nfHooksIn: () => 5, status: (l) => status.push(l) });
  const netns = { inode: 4026532999, name: 'pod1', path: '/run/netns/pod1' };
  const rtnl = null as unknown as NetlinkSocket;
  listener.namespaceAdded(netns, [{ ifindex: 2, name: 'eth0' }], rtnl);
  listener.deviceAdded(netns, { ifindex: 3, name: 'veth1' }, rtnl);
  listener.deviceRemoved(netns, 3);
  listener.namespaceRemoved(netns);
  assert.deepEqual(calls, [
    'tc +netns 4026532999 (1)', 'nf +netns 4026532999 (1)', 'tc +veth1', 'nf +veth1', 'tc -3', 'nf -3', 'tc -netns 4026532999', 'nf -netns 4026532999',
  ]);
  assert.deepEqual(counts, { namespacesAdded: 1, namespacesRemoved: 1, devicesAdded: 1, devicesRemoved: 1 });
  assert.match(status[0]!, /^pktpath: netns pod1 appeared: tc on 1 device, netfilter at 5 hooks \(\d+ ms\)$/);
  assert.equal(status[1], 'pktpath: netns pod1 went away: its observers are released');
  assert.equal(names.ifname(4026532999, 3), 'veth1');
});
