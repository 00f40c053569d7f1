// spawn(): streams, stdin, signals, wait; warm sessions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import {
  Sandbox, Session, AbortError, NotFoundError, HelperError, SandboxIOError,
} from '../index.mjs';
import { findProcs, until, marker } from './helpers.mjs';

test('spawn streams stdout as it comes and takes stdin', async () => {
  const p = new Sandbox().spawn(['sh', '-c', 'echo first; read line; echo "got $line"; echo oops >&2']);
  assert.ok(p.stdout instanceof Readable && p.stdin instanceof Writable);
  const [pid] = await once(p, 'spawn');
  assert.equal(pid, p.pid);
  assert.ok(fs.existsSync(`/proc/${pid}`), 'the sandbox init runs on the host');
  // The first line arrives before we write anything: it is streamed.
  const it = p.stdout[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(String(first.value), 'first\n');
  p.stdin.end('hello\n');
  let rest = '';
  for (let c = await it.next(); !c.done; c = await it.next()) rest += c.value;
  let err = '';
  for await (const c of p.stderr) err += c;
  const r = await p.wait();
  assert.equal(rest, 'got hello\n');
  assert.equal(err, 'oops\n');
  assert.equal(r.exitCode, 0);
  assert.equal(p.exitCode, 0);
  assert.ok(await until(() => !fs.existsSync(`/proc/${pid}`), 3000), 'init left behind');
});

test('kill("SIGTERM") ends it with SIGTERM; kill("SIGKILL") the whole tree', async () => {
  const m = marker();
  const sb = new Sandbox();
  const p = sb.spawn(['sleep', m], { stdin: 'ignore', stdout: 'ignore' });
  assert.equal(p.stdin, null);
  await p.ready;
  assert.ok(await until(() => findProcs('sleep\0', m).length === 1));
  p.kill('SIGTERM');
  const r = await p.wait();
  assert.equal(r.signal, 'SIGTERM');
  assert.equal(r.exitCode, 143);
  const m2 = marker() + '1';
  const q = sb.spawn(['sh', '-c', `trap '' TERM; sleep ${m2} & sleep ${m2}; wait`]);
  await q.ready;
  assert.ok(await until(() => findProcs('sleep\0', m2).length === 2));
  q.kill('SIGKILL');
  await q.wait();
  assert.ok(await until(() => findProcs('sleep\0', m2).length === 0, 2000), 'tree survived SIGKILL');
  assert.throws(() => q.kill('SIGNOPE'), /unknown signal/);
});


test('spawn with signal: abort kills it and wait() rejects with AbortError', async () => {
  const m = marker();
  const ac = new AbortController();
  const p = new Sandbox().spawn(['sleep', m], { signal: ac.signal });
  await p.ready;
  assert.ok(await until(() => findProcs('sleep\0', m).length === 1));
  ac.abort();
  await assert.rejects(p.wait(), AbortError);
  assert.ok(await until(() => findProcs('sleep\0', m).length === 0, 2000));
});

test('spawn of a missing program: wait() and the error event report NotFoundError', async () => {
  const p = new Sandbox().spawn(['/no/such/prog']);
  const errs = [];
  p.on('error', (e) => errs.push(e));
  await assert.rejects(p.wait(), NotFoundError);
  assert.equal(errs.length, 1);
  assert.ok(errs[0] instanceof NotFoundError);
  // The pipes end (nothing holds their other ends any more).
  let out = '';
  for await (const c of p.stdout) out += c;
  assert.equal(out, '');
});

test('a session keeps state between commands and runs them in one sandbox', async () => {
  const sb = new Sandbox();
  const s = await sb.session();
  assert.ok(s instanceof Session);
  try {
    assert.ok(fs.existsSync(`/proc/${s.pid}`));
    await s.run(['sh', '-c', 'echo kept > /tmp/state']);
    const r = await s.run(['cat', '/tmp/state']);
    assert.equal(r.stdout, 'kept\n');
    // Control: a fresh sandbox does not have it.
    const fresh = await sb.run(['cat', '/tmp/state']);
    assert.notEqual(fresh.exitCode, 0);
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => s.run(['echo', String(i)])));
    assert.deepEqual(all.map((x) => x.stdout), Array.from({ length: 10 }, (_, i) => `${i}\n`));
    const t = await s.run(['sleep', '10'], { timeoutMs: 200 });
    assert.equal(t.exitCode, 124);
    assert.equal(t.timedOut, true);
    const p = s.spawn(['sh', '-c', 'cat; echo end']);
    p.stdin.end('piped\n');
    let out = '';
    for await (const c of p.stdout) out += c;
    assert.equal(out, 'piped\nend\n');
    assert.equal((await p.wait()).exitCode, 0);
  } finally {
    await s.close();
  }
  assert.ok(await until(() => !fs.existsSync(`/proc/${s.pid}`), 3000), 'session init left behind');
});

test('closing a session kills its running commands', async () => {
  const s = await new Sandbox().session();
  const m = marker();
  const run = s.run(['sleep', m]).then(() => null, (e) => e);
  assert.ok(await until(() => findProcs('sleep\0', m).length === 1));
  await s.close();
  const err = await run;
  assert.ok(err instanceof HelperError, String(err));
  assert.match(err.message, /session has ended/);
  assert.ok(await until(() => findProcs('sleep\0', m).length === 0, 2000));
});

test('Symbol.asyncDispose closes the session (what `await using` calls)', async () => {
  assert.equal(typeof Symbol.asyncDispose, 'symbol');
  const s = await new Sandbox().session();
  const pid = s.pid;
  assert.equal(s.closed, false);
  await s[Symbol.asyncDispose]();
  assert.equal(s.closed, true);
  assert.ok(await until(() => !fs.existsSync(`/proc/${pid}`), 3000));
});

test('kill() before the sandbox is up is delivered once it runs', async () => {
  const m = marker();
  const p = new Sandbox().spawn(['sleep', m]);
  p.kill('SIGKILL'); // synchronously: the spawn is still on its worker
  // Either the worker sees the kill before it starts the sandbox (nothing
  // starts) or right after (the sandbox is killed as soon as it is up).
  const end = await p.wait().then((r) => r, (e) => e);
  if (end instanceof Error) {
    assert.ok(end instanceof SandboxIOError && /killed before it started/.test(end.message), String(end));
  } else {
    assert.equal(end.signal, 'SIGKILL');
  }
  assert.equal(p.killed, true);
  assert.equal(findProcs('sleep\0', m).length, 0);
  // Control: a milder signal before the start is delivered once it runs.
  const q = new Sandbox().spawn(['sleep', m]);
  q.kill('SIGTERM');
  const r = await q.wait();
  assert.equal(r.signal, 'SIGTERM');
});

test('a session run returns when its command ends, even if a background process holds stdout', async () => {
  const s = await new Sandbox().session();
  try {
    const m = marker();
    const t0 = Date.now();
    const r = await s.run(['sh', '-c', `sleep ${m} & echo started`], { timeoutMs: 30_000 });
    assert.ok(Date.now() - t0 < 5000, `run took ${Date.now() - t0} ms`);
    assert.equal(r.stdout, 'started\n');
    assert.equal(r.exitCode, 0);
    // The background process is still there (it belongs to the session) ...
    assert.equal(findProcs('sleep\0', m).length, 1);
    // ... until the session closes.
    await s.close();
    assert.ok(await until(() => findProcs('sleep\0', m).length === 0, 3000));
  } finally {
    await s.close();
  }
});
