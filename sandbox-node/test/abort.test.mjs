// AbortSignal, timeouts and output caps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Sandbox, AbortError } from '../index.mjs';
import { findProcs, until, tmpDir, marker } from './helpers.mjs';

function isAbort(e) {
  assert.ok(e instanceof AbortError, String(e));
  assert.equal(e.name, 'AbortError');
  assert.equal(e.code, 'ABORT_ERR');
  return true;
}

test('abort mid-run kills the running tree: quick AbortError, sleep gone from the host', async () => {
  const sb = new Sandbox();
  const m = marker();
  const ac = new AbortController();
  const run = sb.run(['sh', '-c', `sleep ${m} & sleep ${m}; wait`], { signal: ac.signal });
  // Control: both sleeps really run on the host before the abort.
  const seen = await until(() => findProcs('sleep\0', m).length === 2 && findProcs('sleep\0', m));
  assert.ok(seen, 'the sleeps never started');
  const t0 = Date.now();
  ac.abort(new Error('user pressed stop'));
  await assert.rejects(run, (e) => isAbort(e) && e.cause.message === 'user pressed stop');
  assert.ok(Date.now() - t0 < 2000, `abort took ${Date.now() - t0} ms`);
  const gone = await until(() => findProcs('sleep\0', m).length === 0, 2000);
  assert.ok(gone, `left running: ${findProcs('sleep\0', m)}`);
});

test('an already aborted signal rejects at once and starts nothing', async () => {
  const dir = tmpDir('abort');
  const sb = new Sandbox({ rw: [`${dir}:/out`] });
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(sb.run(['touch', '/out/ran'], { signal: ac.signal }), isAbort);
  // Control: without abort the same command does create the file.
  await sb.run(['touch', '/out/ran3']);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['ran3']);
  // Aborted while the sandbox is being built: the kill waits for it and
  // lands as soon as it is up; nothing is left behind.
  const m = marker();
  const ac2 = new AbortController();
  const p = sb.run(['sleep', m], { signal: ac2.signal });
  ac2.abort();
  await assert.rejects(p, isAbort);
  assert.ok(await until(() => findProcs('sleep\0', m).length === 0, 2000));
});

test('abort after the run finished changes nothing', async () => {
  const ac = new AbortController();
  const r = await new Sandbox().run(['echo', 'done'], { signal: ac.signal });
  ac.abort();
  assert.equal(r.stdout, 'done\n');
});

test('abort mid-run in a session kills that command only', async () => {
  const s = await new Sandbox().session();
  try {
    const m = marker();
    const ac = new AbortController();
    const run = s.run(['sleep', m], { signal: ac.signal });
    assert.ok(await until(() => findProcs('sleep\0', m).length === 1), 'sleep never started');
    ac.abort();
    await assert.rejects(run, isAbort);
    assert.ok(await until(() => findProcs('sleep\0', m).length === 0, 2000), 'sleep survived');
    // The session lives on.
    assert.equal((await s.run(['echo', 'still here'])).stdout, 'still here\n');
  } finally {
    await s.close();
  }
});

test('timeouts: policy timeoutMs and per-run timeoutMs end the tree with 124', async () => {
  const m = marker();
  const t0 = Date.now();
  const r = await new Sandbox({ timeoutMs: 300 }).run(['sh', '-c', `sleep ${m}; echo never`]);
  assert.equal(r.exitCode, 124);
  assert.equal(r.timedOut, true);
  assert.equal(r.ok, false);
  assert.equal(r.stdout, '');
  assert.ok(Date.now() - t0 < 5000);
  assert.ok(await until(() => findProcs('sleep\0', m).length === 0, 2000));
  const r2 = await new Sandbox({ timeoutMs: 60_000 }).run(['sleep', '30'], { timeoutMs: 200 });
  assert.equal(r2.exitCode, 124);
  assert.equal(r2.timedOut, true);
  // Control: a command inside its time is not marked.
  const ok = await new Sandbox({ timeoutMs: 5000 }).run(['sleep', '0.05']);
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.timedOut, false);
});

test('maxOutput caps each stream at exactly the cap and sets truncated', async () => {
  const sb = new Sandbox();
  const big = await sb.run(['sh', '-c', 'head -c 100000 /dev/zero; head -c 5000 /dev/zero >&2'],
    { maxOutput: 1000, encoding: 'buffer' });
  assert.equal(big.stdout.length, 1000);
  assert.equal(big.stderr.length, 1000);
  assert.equal(big.truncated, true);
  assert.equal(big.exitCode, 0);
  // A flood far past the cap is drained (the command is not stuck on a full pipe).
  const flood = await sb.run(['sh', '-c', 'head -c 50000000 /dev/zero; echo end >&2'],
    { maxOutput: 10, timeoutMs: 20_000 });
  assert.equal(flood.stdout.length, 10);
  assert.equal(flood.stderr, 'end\n');
  assert.equal(flood.timedOut, false);
  // Controls: under and exactly at the cap.
  const small = await sb.run(['head', '-c', '500', '/dev/zero'], { maxOutput: 1000, encoding: 'buffer' });
  assert.equal(small.stdout.length, 500);
  assert.equal(small.truncated, false);
  const exact = await sb.run(['head', '-c', '1000', '/dev/zero'], { maxOutput: 1000, encoding: 'buffer' });
  assert.equal(exact.stdout.length, 1000);
  assert.equal(exact.truncated, false);
});

test('the AbortSignal listener is removed after each run', async () => {
  const ac = new AbortController();
  const sb = new Sandbox();
  for (let i = 0; i < 20; i++) await sb.run(['true'], { signal: ac.signal });
  // Node warns past 10 listeners; count them through the internal symbol-free API.
  const { getEventListeners } = await import('node:events');
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
});
