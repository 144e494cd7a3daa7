import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NameBook } from '../../src/trace/names.js';

test('names of namespaces and devices: what the book holds now, after every change, for every lookup', () => {
  const book = NameBook.of([
    { netns: { inode: 100, name: '' }, ifaces: [{ ifindex: 1, name: 'lo' }, { ifindex: 2, name: 'eth0' }] },
    { netns: { inode: 200, name: 'pod-a' }, ifaces: [{ ifindex: 2, name: 'eth0' }] },
  ]);
  const where = (n: number, i: number) => {
    const w = book.where(n, i);
    return { netnsName: w.netnsName, ifname: w.ifname };
  };
  assert.deepEqual(where(100, 2), { netnsName: '', ifname: 'eth0' });
  assert.deepEqual(where(200, 2), { netnsName: 'pod-a', ifname: 'eth0' });
  assert.deepEqual(where(300, 2), { netnsName: '', ifname: '' });
  // Looked up again after each change: the remembered answer is not used once a name changed.
  book.setDevice(200, { ifindex: 2, name: 'eth0-renamed' });
  assert.deepEqual(where(200, 2), { netnsName: 'pod-a', ifname: 'eth0-renamed' });
  book.setDevice(200, { ifindex: 7, name: 'veth7' });
  assert.deepEqual(where(200, 7), { netnsName: 'pod-a', ifname: 'veth7' });
  // A device of a namespace the book does not know is not invented.
  book.setDevice(300, { ifindex: 2, name: 'x' });
  assert.deepEqual(where(300, 2), { netnsName: '', ifname: '' });
  book.setNamespace({ inode: 300, name: 'pod-b' }, [{ ifindex: 2, name: 'eth0' }]);
  assert.deepEqual(where(300, 2), { netnsName: 'pod-b', ifname: 'eth0' });
  assert.equal(book.netnsName(300), 'pod-b');
  assert.equal(book.ifname(100, 1), 'lo');
  // Many lookups that share slots give each its own answer.
  for (let i = 0; i < 2000; i++) {
    const n = [100, 200, 300][i % 3]!;
    const ifindex = (i * 7919) % 64;
    assert.deepEqual(where(n, ifindex), { netnsName: book.netnsName(n), ifname: book.ifname(n, ifindex) });
  }
});
