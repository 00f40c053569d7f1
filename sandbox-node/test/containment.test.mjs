// What a hostile command must not see or touch, each with a positive control.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox } from '../index.mjs';
import { tmpDir } from './helpers.mjs';

const sb = new Sandbox({ timeoutMs: 30_000 });

test('/root, /home and the host home are not visible; /usr is (control)', async () => {
  const home = os.homedir();
  const r = await sb.run(['sh', '-c', `ls -d /root; ls -d /home; ls -d "${home}"; ls -d /usr`]);
  assert.equal(r.stdout, '/usr\n');
  assert.match(r.stderr, /\/root.*No such file/);
  assert.match(r.stderr, /\/home.*No such file/);
  // The host itself has /root: the control that the path is real.
  assert.ok(fs.existsSync('/root'));
});

test('/etc is read-only: a write fails and the host file never appears', async () => {
  const name = `/etc/stockade-node-probe-${process.pid}`;
  const r = await sb.run(['sh', '-c', `echo pwned > ${name}`]);
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /Read-only file system|Permission denied/);
  assert.equal(fs.existsSync(name), false);
  // Control: /etc is readable.
  const ok = await sb.run(['sh', '-c', 'test -r /etc/passwd && echo readable']);
  assert.equal(ok.stdout, 'readable\n');
});

test('an rw grant is writable and the host sees the file; an ro grant is not writable', async () => {
  const rw = tmpDir('rw');
  const ro = tmpDir('ro');
  fs.writeFileSync(path.join(ro, 'given.txt'), 'data\n');
  fs.chmodSync(path.join(ro, 'given.txt'), 0o644);
  const box = new Sandbox({ rw: [`${rw}:/repo`], ro: [`${ro}:/data`] });
  const r = await box.run(['sh', '-c',
    'echo made-inside > /repo/out.txt && cat /data/given.txt && echo x > /data/new.txt'],
  { cwd: '/repo' });
  assert.equal(r.stdout, 'data\n');
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /Read-only file system|Permission denied/);
  assert.equal(fs.readFileSync(path.join(rw, 'out.txt'), 'utf8'), 'made-inside\n');
  assert.equal(fs.existsSync(path.join(ro, 'new.txt')), false);
});

test('net none: connecting out fails; a loopback server inside works (control)', async () => {
  // Runs node inside the sandbox (/usr/bin is bound read-only). The namespace
  // has only `lo`, so the connect fails locally and no packet leaves.
  const probe = (host, port) => `
    const s = require('net').connect(${port}, '${host}');
    s.setTimeout(3000, () => { console.log('TIMEOUT'); process.exit(3); });
    s.on('connect', () => { console.log('CONNECTED'); process.exit(0); });
    s.on('error', (e) => { console.log(e.code); process.exit(7); });`;
  const out = await sb.run([process.execPath, '-e', probe('1.1.1.1', 80)]);
  assert.equal(out.exitCode, 7, out.output);
  assert.match(out.stdout, /^(ENETUNREACH|EACCES|EPERM)\n$/);
  const local = new Sandbox({ loopbackTcp: true });
  const server = `
    const net = require('net');
    const srv = net.createServer((c) => c.end('hi')).listen(8080, '127.0.0.1', () => {
      ${probe('127.0.0.1', 8080)}
    });`;
  const ctl = await local.run([process.execPath, '-e', server]);
  assert.equal(ctl.stdout, 'CONNECTED\n', ctl.output);
});

test('host processes are invisible: the sandbox has its own pid namespace', async () => {
  const r = await sb.run(['sh', '-c', 'echo $$; ls /proc | grep -c "^[0-9]"']);
  const [pid, count] = r.stdout.trim().split('\n').map(Number);
  assert.ok(pid <= 3, r.stdout);
  assert.ok(count <= 5, r.stdout);
  assert.equal(fs.existsSync(`/proc/${process.pid}`), true); // control: the host's view
});

test('net proxy: an unlisted domain is denied (event recorded); an allowed one goes through (control)', async () => {
  const http = await import('node:http');
  const srv = http.createServer((q, s) => s.end(`host says ${q.url}`)).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const { port } = srv.address();
  try {
    // The host-side server stands in for an allowed API: a static address
    // on the host's loopback, allowed explicitly. Nothing leaves the machine.
    const sb = new Sandbox({
      allowDomain: [`api.local.test:${port}`],
      resolve: ['api.local.test:127.0.0.1'],
      allowPrivate: ['127.0.0.1/32'],
    });
    const denied = await sb.run(['curl', '-sS', '-m', '5', 'https://metrics.evil.example/upload']);
    assert.notEqual(denied.exitCode, 0);
    const d = denied.events.find((e) => e.host === 'metrics.evil.example');
    assert.equal(d.decision, 'denied');
    assert.equal(d.reason, 'not-allowed');
    assert.equal(d.address, null, 'a denied name is never resolved');
    const ok = await sb.run(['curl', '-sS', '-m', '5', `http://api.local.test:${port}/hi`]);
    assert.equal(ok.stdout, 'host says /hi', ok.output);
    const a = ok.events.find((e) => e.decision === 'allowed');
    assert.equal(a.host, 'api.local.test');
    assert.equal(a.address, `127.0.0.1:${port}`);
  } finally {
    srv.close();
  }
});
