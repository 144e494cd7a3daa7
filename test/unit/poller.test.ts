/** FdPoller: a wait ends when a watched fd is readable, or (without its callback) when the poller closes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { FdPoller } from '../../src/bpf/poller.js';
import { c } from '../../src/bpf/native/libc.js';

const EFD_NONBLOCK = 0o4000;

function signal(fd: number): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  c.write(fd, one, 8);
}

test('a wait sleeps until a watched fd is readable, and calls back on the main thread', async () => {
  const fd = c.eventfd(0, EFD_NONBLOCK);
  const poller = new FdPoller();
  try {
    poller.watch([fd]);
    let woken = false;
    const done = new Promise<void>((resolve) => poller.wait(() => {
      woken = true;
      resolve();
    }));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(woken, false, 'nothing readable yet');
    assert.equal(poller.sleeping, true);
    signal(fd);
    await done;
    assert.equal(poller.sleeping, false);
  } finally {
    poller.close();
    c.close(fd);
  }
});

test('closing ends a wait under way without its callback', async () => {
  const fd = c.eventfd(0, EFD_NONBLOCK);
  const poller = new FdPoller();
  poller.watch([fd]);
  let called = false;
  poller.wait(() => (called = true));
  poller.close();
  // The pool thread returns at once: the process would otherwise not end.
  for (let i = 0; i < 100 && poller.sleeping; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(poller.sleeping, false);
  assert.equal(called, false);
  c.close(fd);
});

test('a wait under way does not hold the process\'s exit', () => {
  // A child that starts a wait on an fd that never becomes readable, and exits at once.
  const script = `
    const { FdPoller } = await import(${JSON.stringify(new URL('../../src/bpf/poller.js', import.meta.url).href)});
    const { c } = await import(${JSON.stringify(new URL('../../src/bpf/native/libc.js', import.meta.url).href)});
    const poller = new FdPoller();
    poller.watch([c.eventfd(0, ${EFD_NONBLOCK})]);
    poller.wait(() => {});
    setTimeout(() => process.exit(0), 50);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 5000 });
  assert.equal(r.signal, null, 'the child did not exit by itself');
  assert.equal(r.status, 0, r.stderr.toString());
});
