import { libnftables } from './dist/src/bpf/native.js';
import { withNetns } from './dist/src/kernel/netns.js';
const lib = libnftables();
const [m1, m2] = process.argv.slice(2).map(Number);
withNetns('/run/netns/ppq-host', () => {
const a = lib.newContext(m1);
console.log('a1', a.run('list ruleset').ok);
const b = lib.newContext(m2);
console.log('b1', b.run('list ruleset').ok);
b.free();
console.log('a2', JSON.stringify(a.run('list ruleset')).slice(0, 80));
a.free();
console.log('done');
});
