// Concurrency, leaks and event-loop responsiveness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Sandbox } from '../index.mjs';
import { ownChildren, fdCount, until } from './helpers.mjs';

test('50 concurrent runs all succeed with their own output', async () => {
  const sb = new Sandbox({ timeoutMs: 60_000 });
  const rs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    sb.run(['sh', '-c', `echo run-${i}; cat /proc/1/comm`])));
  rs.forEach((r, i) => {
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(r.stdout, `run-${i}\nstockade-init\n`);
  });
});

test('nothing leaks after 500 runs: same fds, no leftover child processes', async () => {
  const sb = new Sandbox();
  // Warm up: the runtime's threads and the first sandbox's lazily made state.
  for (let i = 0; i < 10; i++) await sb.run(['true']);
  await until(() => ownChildren().length === 0, 3000);
  const fdsBefore = fdCount();
  const kidsBefore = ownChildren();
  let ran = 0;
  const worker = async (n) => {
    for (let i = 0; i < n; i++) {
      const r = await sb.run(['sh', '-c', 'echo x; echo y >&2'], { input: 'z' });
      assert.equal(r.stdout, 'x\n');
      ran++;
    }
  };
  await Promise.all(Array.from({ length: 10 }, () => worker(50)));
  assert.equal(ran, 500);
  // Helpers are reaped in the background: give them a moment. The one
  // pre-warmed helper (see index.js) is replaced after each use, so it may
  // have a new pid; anything beyond it is a leak.
  const kidsAfter = await until(() => {
    const k = ownChildren();
    return k.length === kidsBefore.length ? k : null;
  }, 5000);
  assert.ok(kidsAfter, `children before ${kidsBefore}, after ${ownChildren()}`);
  const fresh = kidsAfter.filter((p) => !kidsBefore.includes(p));
  assert.ok(fresh.length <= 1, `new children: ${fresh}`);
  for (const p of fresh) {
    assert.match(fs.readFileSync(`/proc/${p}/cmdline`, 'latin1'), /stockade-init\0--stockade-init-v1/);
  }
  const fdsAfter = await until(() => (fdCount() === fdsBefore ? fdCount() : null), 3000);
  assert.equal(fdsAfter, fdsBefore, `fds ${fdsBefore} -> ${fdCount()}`);
});

test('the event loop keeps running while 100 sandboxes run', async () => {
  const sb = new Sandbox({ timeoutMs: 60_000 });
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 5);
  const t0 = performance.now();
  try {
    const rs = await Promise.all(Array.from({ length: 100 }, () => sb.run(['sleep', '1'])));
    assert.ok(rs.every((r) => r.exitCode === 0));
  } finally {
    clearInterval(timer);
  }
  const elapsed = performance.now() - t0;
  // Every sandbox sleeps 1 s: a loop blocked by the calls would stall for
  // about that long. What is left is host scheduling (2 cores, 100 spawns).
  assert.ok(elapsed >= 1000);
  assert.ok(maxGap < 400, `the event loop stalled for ${maxGap.toFixed(1)} ms`);
  assert.ok(ticks >= elapsed / 5 / 4, `${ticks} ticks in ${elapsed.toFixed(0)} ms`);
  console.log(`# 100 sandboxes: ${elapsed.toFixed(0)} ms, ${ticks} ticks, max gap ${maxGap.toFixed(1)} ms`);
});
