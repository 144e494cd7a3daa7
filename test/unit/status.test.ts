/** The status lines of a session: what was attached, and what --filter-track-skb did. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachedLine, trackingLine } from '../../src/trace/status.js';

test('--filter-track-skb at exit: forgotten, dropped as stale, still followed, and the rest evicted for room; moves when any', () => {
  assert.equal(trackingLine({ added: 10, freed: 6, stale: 2, moved: 0, live: 1 }),
    'pktpath: --filter-track-skb followed 10 skbs: 6 forgotten when freed, 2 dropped when their address held another skb ' +
    '(freed where no probe saw it), 1 still followed, 1 evicted for room');
  assert.match(trackingLine({ added: 3, freed: 3, stale: 0, moved: 2, live: 0 }), /followed 3 skbs \(2 on past a move of their data\): 3 forgotten.* 0 evicted/);
});

test('the frees watched for --filter-track-skb alone are counted apart from the tracepoints observed', () => {
  const state = {
    links: 3, tracepoints: 1, forgets: 2, functions: 0, tcDevices: 0, tcAside: 0, tcFirst: 0, nfNamespaces: 0, nfHookFunction: false,
    programs: 0, nfMoved: new Set<string>(), nftNamespaces: null,
  };
  assert.match(attachedLine(state, 12), /^pktpath: attached 3 links: 1 tracepoints, 2 frees watched for --filter-track-skb, tc on 0 devices/);
  assert.doesNotMatch(attachedLine({ ...state, forgets: 0 }, 12), /watched/);
});

test('devices left without tc observers (--tc-devices programs) are counted in the attached line', () => {
  const state = {
    links: 19, tracepoints: 17, forgets: 0, functions: 0, tcDevices: 1, tcAside: 220, tcFirst: 0, nfNamespaces: 1, nfHookFunction: false,
    programs: 0, nfMoved: new Set<string>(), nftNamespaces: null,
  };
  assert.match(attachedLine(state, 12), /tc on 1 device \(not on 220 without tc programs\), netfilter in 1 namespace/);
  assert.doesNotMatch(attachedLine({ ...state, tcAside: 0 }, 12), /not on/);
});
