// The package used by an unprivileged user (`stockade-test`), from a copy
// that user can read: the addon, the JS and the bundled helper.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PKG = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const USER = 'stockade-test';

function ensureUser() {
  if (spawnSync('id', ['-u', USER]).status !== 0) {
    execFileSync('useradd', ['-M', '-s', '/bin/sh', USER]);
  }
  return Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
}

/** Copy what the package ships into a 0755 directory anyone can read. */
function copyPackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stockade-node-unpriv-'));
  fs.chmodSync(dir, 0o755);
  const dst = path.join(dir, 'stockade');
  for (const f of ['package.json', 'index.js', 'index.mjs', 'index.d.ts', 'lib', 'native/stockade.node', 'stockade-init']) {
    fs.cpSync(path.join(PKG, f), path.join(dst, f), { recursive: true });
  }
  execFileSync('chmod', ['-R', 'a+rX', dst]);
  return { dir, dst };
}

const SCRIPT = `
import fs from 'node:fs';
import { Sandbox, helperPath } from './stockade/index.mjs';
const out = {};
const sb = new Sandbox({ timeoutMs: 30000 });
const r = await sb.run(['sh', '-c', 'echo hello; id -u; ls -d /root 2>&1; echo x > /etc/probe 2>&1; echo rc=$?']);
out.stdout = r.stdout;
out.exitCode = r.exitCode;
const p = sb.spawn(['sleep', '30']);
const pid = await p.ready;
out.initUid = Number(fs.readFileSync('/proc/' + pid + '/status', 'utf8').match(/^Uid:\\s+(\\d+)/m)[1]);
const ac = new AbortController();
const run = sb.run(['sleep', '31.5'], { signal: ac.signal });
setTimeout(() => ac.abort(), 300);
out.abort = await run.then(() => 'resolved', (e) => e.name);
p.kill('SIGKILL');
out.killed = (await p.wait()).signal;
const s = await sb.session();
out.session = (await s.run(['echo', 'warm'])).stdout;
await s.close();
out.helper = helperPath;
out.myUid = process.getuid();
console.log(JSON.stringify(out));
`;

test('an unprivileged user runs sandboxes from a copy of the package', { skip: process.getuid() !== 0 && 'needs root to switch users' }, () => {
  const uid = ensureUser();
  const { dir, dst } = copyPackage();
  try {
    fs.writeFileSync(path.join(dir, 'probe.mjs'), SCRIPT);
    fs.chmodSync(path.join(dir, 'probe.mjs'), 0o644);
    const res = spawnSync('runuser', ['-u', USER, '--', process.execPath, 'probe.mjs'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/nonexistent' },
    });
    assert.equal(res.status, 0, `stdout: ${res.stdout}\nstderr: ${res.stderr}`);
    const out = JSON.parse(res.stdout.trim().split('\n').pop());
    assert.equal(out.myUid, uid);
    assert.equal(out.helper, path.join(dst, 'stockade-init'));
    // Inside, the caller's own uid; /root absent; /etc not writable (rc=2).
    assert.equal(out.stdout, `hello\n${uid}\nls: cannot access '/root': No such file or directory\nrc=2\n`);
    assert.equal(out.exitCode, 0);
    assert.equal(out.initUid, uid, 'the sandbox runs as the caller on the host');
    assert.equal(out.abort, 'AbortError');
    assert.equal(out.killed, 'SIGKILL');
    assert.equal(out.session, 'warm\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
