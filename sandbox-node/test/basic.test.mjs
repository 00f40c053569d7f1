// Positive controls, results, exit codes, options and error classes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  Sandbox, doctor, PolicyError, NotFoundError, SandboxError, SandboxIOError,
} from '../index.mjs';
import { tmpDir } from './helpers.mjs';

test('echo runs; result fields have the documented types', async () => {
  const sb = new Sandbox({ env: { CI: '1' } });
  const r = await sb.run(['sh', '-c', 'echo out $CI; echo err >&2; exit 3']);
  assert.equal(r.exitCode, 3);
  assert.equal(r.ok, false);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, 'out 1\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(r.output, 'out 1\nerr\n');
  assert.equal(r.timedOut, false);
  assert.equal(r.truncated, false);
  assert.equal(r.oomKilled, null);
  assert.ok(r.durationMs > 0 && r.durationMs < 10_000, String(r.durationMs));
  assert.deepEqual(r.events, []);
  const ok = await sb.run(['true']);
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.ok, true);
});

test('shell: true, input, encoding "buffer", per-run env and cwd', async () => {
  const sb = new Sandbox();
  const r = await sb.run('cat | tr a-z A-Z; pwd; echo $GREETING', {
    shell: true, input: 'fed in\n', env: { GREETING: 'hi' }, cwd: '/tmp',
  });
  assert.equal(r.stdout, 'FED IN\n/tmp\nhi\n');
  const b = await sb.run(['printf', '\\377\\000x'], { encoding: 'buffer' });
  assert.ok(Buffer.isBuffer(b.stdout));
  assert.deepEqual([...b.stdout], [0xff, 0, 0x78]);
  const u8 = await sb.run(['cat'], { input: new Uint8Array([104, 105]) });
  assert.equal(u8.stdout, 'hi');
});

test('the policy environment is cleared except what was given', async () => {
  process.env.STOCKADE_NODE_SECRET = 'leak';
  const r = await new Sandbox().run(['sh', '-c', 'echo "[$STOCKADE_NODE_SECRET]"; hostname']);
  assert.equal(r.stdout, '[]\nstockade\n');
  const passed = await new Sandbox({ passEnv: ['STOCKADE_NODE_SECRET'], hostname: 'box' })
    .run(['sh', '-c', 'echo "[$STOCKADE_NODE_SECRET]"; hostname']);
  assert.equal(passed.stdout, '[leak]\nbox\n');
});

test('exit statuses: not found, killed by a signal', async () => {
  const sb = new Sandbox();
  await assert.rejects(sb.run(['/no/such/program']), (e) => {
    assert.ok(e instanceof NotFoundError && e instanceof SandboxError && e instanceof Error);
    assert.equal(e.name, 'NotFoundError');
    assert.equal(e.layer, 'exec');
    assert.match(e.message, /not found inside the sandbox: \/no\/such\/program/);
    return true;
  });
  const r = await sb.run(['sh', '-c', 'kill -TERM $$']);
  assert.equal(r.signal, 'SIGTERM');
  assert.equal(r.exitCode, 128 + 15);
});

test('unknown and malformed options throw PolicyError naming the option', async () => {
  const bad = [
    [{ bogus: 1 }, /unknown option `bogus`/],
    [{ timeout: 5 }, /unknown option `timeout`/],
    [{ memory: '12Q' }, /invalid size `12Q`/],
    [{ pids: -1 }, /`pids` must be a non-negative integer/],
    [{ ro: '/data' }, /`ro` must be an array of strings/],
    [{ net: 'wifi' }, /wifi/],
    [{ env: { A: 1 } }, /value of `A` must be a string/],
    [{ env: { 'A=B': 'x' } }, /invalid environment variable name `A=B`/],
    [{ timeoutMs: -5 }, /invalid timeout/],
    [{ syscallsDeny: ['fork2'] }, /`fork2`/],
    [{ net: () => 'none' }, /`net` must not be a function/],
  ];
  for (const [opts, re] of bad) {
    assert.throws(() => new Sandbox(opts), (e) => {
      assert.ok(e instanceof PolicyError, `${JSON.stringify(opts)}: ${e}`);
      assert.equal(e.layer, 'policy');
      assert.match(e.message, re);
      return true;
    }, JSON.stringify(opts));
  }
  assert.throws(() => new Sandbox('net=none'), TypeError);
  // Controls: the same keys with good values are accepted.
  new Sandbox({ memory: '64M', pids: 64, ro: ['/usr'], net: 'none', env: { A: '1' }, timeoutMs: 5 });
  new Sandbox({ net: null, cwd: undefined });
});

test('undefined values of unknown keys are still refused (typos are not ignored)', () => {
  // JSON would drop `undefined`; the binding keeps the key so the typo shows.
  assert.throws(() => new Sandbox({ timout: undefined }), /unknown option `timout`/);
});

test('bad run() options and commands throw before anything starts', async () => {
  const sb = new Sandbox();
  await assert.rejects(sb.run(['true'], { timeout: 5 }), (e) => e instanceof PolicyError
    && /unknown run\(\) option `timeout`/.test(e.message));
  await assert.rejects(sb.run('echo hi'), (e) => e instanceof PolicyError && /shell: true/.test(e.message));
  await assert.rejects(sb.run(['echo'], { shell: true }), PolicyError);
  await assert.rejects(sb.run([]), (e) => e instanceof PolicyError && /must not be empty/.test(e.message));
  await assert.rejects(sb.run(['true'], { timeoutMs: 0 }), /invalid timeoutMs 0/);
  await assert.rejects(sb.run(['true'], { maxOutput: 1.5 }), /invalid maxOutput 1.5/);
  await assert.rejects(sb.run(['true'], { encoding: 'klingon' }), PolicyError);
  await assert.rejects(sb.run(['true'], { signal: 'yes' }), TypeError);
  await assert.rejects(sb.run([1, 2]), TypeError);
});

test('a nonexistent ro path is refused with the path named when the Sandbox is built', () => {
  assert.throws(() => new Sandbox({ ro: ['/nonexistent/stockade-data'] }), (e) => {
    assert.ok(e instanceof PolicyError);
    assert.match(e.message, /cannot grant \/nonexistent\/stockade-data: No such file or directory/);
    return true;
  });
  // Positive control: an existing path builds.
  assert.ok(new Sandbox({ ro: ['/usr'] }));
});

test('Sandbox.fromToml reads the CLI policy format; errors name the line', async () => {
  const dir = tmpDir('toml');
  const good = path.join(dir, 'p.toml');
  fs.writeFileSync(good, 'hostname = "tomlbox"\nenv = { FROM = "toml" }\ntimeout = 30\n');
  const r = await Sandbox.fromToml(good).run(['sh', '-c', 'echo $FROM $(hostname)']);
  assert.equal(r.stdout, 'toml tomlbox\n');
  const bad = path.join(dir, 'bad.toml');
  fs.writeFileSync(bad, 'hostname = "x"\nbogus = 1\n');
  assert.throws(() => Sandbox.fromToml(bad), (e) => e instanceof PolicyError && /bad.toml:2/.test(e.message));
  assert.throws(() => Sandbox.fromToml(path.join(dir, 'missing.toml')), /cannot read policy/);
});

test('CommonJS require gives the same classes', async () => {
  const require = createRequire(import.meta.url);
  const cjs = require('..');
  const esm = await import('../index.mjs');
  assert.equal(cjs.Sandbox, esm.Sandbox);
  assert.equal(cjs.PolicyError, esm.PolicyError);
  const r = await new cjs.Sandbox().run(['echo', 'cjs']);
  assert.equal(r.stdout, 'cjs\n');
});

test('doctor() resolves with the structured report', async () => {
  const rep = await doctor();
  assert.equal(typeof rep, 'object');
  assert.equal(rep.ok, true, JSON.stringify(rep).slice(0, 2000));
  assert.ok(Object.keys(rep).length > 1);
});

test('a closed session refuses new commands with SandboxIOError', async () => {
  const s = await new Sandbox().session();
  assert.equal((await s.run(['echo', 'x'])).stdout, 'x\n');
  await s.close();
  await s.close(); // idempotent
  assert.equal(s.closed, true);
  await assert.rejects(s.run(['true']), (e) => e instanceof SandboxIOError && /session is closed/.test(e.message));
});
