// Per-call latency of a sandboxed /bin/true against
// child_process.execFile("/bin/true") in the same process, one call at a
// time, the kinds interleaved call by call so host noise hits all alike.
//
//   npm run build            # release addon and helper
//   node bench/latency.mjs [calls=300] [warmup=30]
//
// Rows: execFile; sb.run (with the automatic pre-warmed helper, the
// default); session.run in a warm session; and, from a second process with
// STOCKADE_NO_PREWARM=1, sb.run cold against execFile again.
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Sandbox } from '../index.mjs';

const N = Number(process.argv[2] || 300);
const WARMUP = Number(process.argv[3] || 30);
const COLD = process.env.STOCKADE_NO_PREWARM === '1';
const execFileP = promisify(execFile);

function check(r) {
  if (r.exitCode !== 0) throw new Error(`/bin/true failed: ${JSON.stringify(r)}`);
}

const sb = new Sandbox();
const kinds = [
  ['execFile("/bin/true")', () => execFileP('/bin/true')],
  [COLD ? 'sb.run(["/bin/true"]) cold' : 'sb.run(["/bin/true"])', async () => check(await sb.run(['/bin/true']))],
];
let session;
if (!COLD) {
  session = await sb.session();
  kinds.push(['session.run(["/bin/true"])', async () => check(await session.run(['/bin/true']))]);
}

const times = kinds.map(() => []);
for (let i = 0; i < WARMUP + N; i++) {
  for (let k = 0; k < kinds.length; k++) {
    const j = (i + k) % kinds.length; // rotate the order each round
    const t0 = process.hrtime.bigint();
    await kinds[j][1]();
    if (i >= WARMUP) times[j].push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}
await session?.close();

const stats = times.map((t) => {
  t.sort((a, b) => a - b);
  return { p50: t[Math.floor(t.length / 2)], mean: t.reduce((a, b) => a + b, 0) / t.length, p90: t[Math.floor(t.length * 0.9)] };
});
if (!COLD) console.log(`node ${process.version}, ${N} calls each after ${WARMUP} warm-up, interleaved, uid ${process.getuid()}`);
kinds.forEach(([name], k) => {
  const s = stats[k];
  const rel = k === 0 ? '' : `   ratio p50 ${(s.p50 / stats[0].p50).toFixed(2)}x, mean ${(s.mean / stats[0].mean).toFixed(2)}x`;
  console.log(`${name.padEnd(30)} p50 ${s.p50.toFixed(3).padStart(7)} ms  mean ${s.mean.toFixed(3).padStart(7)} ms  p90 ${s.p90.toFixed(3).padStart(7)} ms${rel}`);
});

if (!COLD) {
  console.log('(targets: sb.run <= 2x, session.run <= 1.5x execFile)\n--- without the pre-warmed helper (STOCKADE_NO_PREWARM=1):');
  spawnSync(process.execPath, [fileURLToPath(import.meta.url), String(N), String(WARMUP)], {
    stdio: 'inherit',
    env: { ...process.env, STOCKADE_NO_PREWARM: '1' },
  });
}
