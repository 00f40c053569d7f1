// The Vercel-AI-SDK-shaped adapter: run({command, workingDirectory, env, abortSignal}).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Sandbox, aiSdkSandbox, AbortError, PolicyError } from '../index.mjs';
import { tmpDir, findProcs, until, marker } from './helpers.mjs';

test('run() returns exactly {exitCode, stdout, stderr} as strings', async () => {
  const dir = tmpDir('ai');
  const box = aiSdkSandbox(new Sandbox({ rw: [`${dir}:/workspace`] }));
  const r = await box.run({
    command: 'pwd; echo "$MODE"; echo warn >&2; exit 2',
    workingDirectory: '/workspace',
    env: { MODE: 'agent' },
  });
  assert.deepEqual(Object.keys(r).sort(), ['exitCode', 'stderr', 'stdout']);
  assert.deepEqual(r, { exitCode: 2, stdout: '/workspace\nagent\n', stderr: 'warn\n' });
  // An argv array runs without a shell.
  const a = await box.run({ command: ['echo', '$HOME; rm -rf /'] });
  assert.deepEqual(a, { exitCode: 0, stdout: '$HOME; rm -rf /\n', stderr: '' });
  // Writes land in the granted directory only.
  await box.run({ command: 'echo note > notes.txt', workingDirectory: '/workspace' });
  assert.equal(fs.readFileSync(`${dir}/notes.txt`, 'utf8'), 'note\n');
});

test('abortSignal kills the command and rejects with AbortError', async () => {
  const box = aiSdkSandbox(new Sandbox());
  const m = marker();
  const ac = new AbortController();
  const run = box.run({ command: `sleep ${m}`, abortSignal: ac.signal });
  assert.ok(await until(() => findProcs('sleep\0', m).length === 1));
  ac.abort();
  await assert.rejects(run, AbortError);
  assert.ok(await until(() => findProcs('sleep\0', m).length === 0, 2000));
});

test('a session-backed adapter keeps files between calls; close() ends it', async () => {
  const s = await new Sandbox().session();
  const box = aiSdkSandbox(s);
  await box.run({ command: 'echo 42 > /tmp/answer' });
  assert.deepEqual(await box.run({ command: 'cat /tmp/answer' }), { exitCode: 0, stdout: '42\n', stderr: '' });
  await box.close();
  assert.equal(s.closed, true);
});

test('contract errors: unknown fields and missing objects are refused', async () => {
  const box = aiSdkSandbox(new Sandbox());
  await assert.rejects(box.run({ command: 'true', cwd: '/' }), (e) => e instanceof PolicyError
    && /unknown run\(\) field `cwd`/.test(e.message));
  await assert.rejects(box.run('true'), TypeError);
  assert.throws(() => aiSdkSandbox({}), TypeError);
});
