'use strict';
// An adapter shaped like the Vercel AI SDK's sandbox session:
//   run({ command, workingDirectory, env, abortSignal }) -> { exitCode, stdout, stderr }
// Plain JS, no dependency on the `ai` package. A string command runs through
// /bin/sh -c (what an agent's bash tool hands over); an array runs as argv.

const { PolicyError } = require('./errors.js');

const KEYS = ['command', 'workingDirectory', 'env', 'abortSignal', 'timeoutMs', 'maxOutput'];

/**
 * Wrap a `Sandbox` (a fresh sandbox per call) or a `Session` (one warm
 * sandbox whose files persist between calls).
 */
function aiSdkSandbox(target) {
  if (!target || typeof target.run !== 'function') {
    throw new TypeError('aiSdkSandbox() needs a stockade Sandbox or Session');
  }
  return {
    async run(request) {
      if (!request || typeof request !== 'object') {
        throw new TypeError('run() needs an object { command, workingDirectory?, env?, abortSignal? }');
      }
      for (const k of Object.keys(request)) {
        if (!KEYS.includes(k)) {
          throw new PolicyError(`unknown run() field \`${k}\` (known: ${KEYS.join(', ')})`);
        }
      }
      const { command, workingDirectory, env, abortSignal, timeoutMs, maxOutput } = request;
      const shell = typeof command === 'string';
      const r = await target.run(command, {
        shell,
        cwd: workingDirectory,
        env,
        signal: abortSignal,
        timeoutMs,
        maxOutput,
      });
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    },
    /** Close the wrapped session, if it is one. */
    async close() {
      if (typeof target.close === 'function') await target.close();
    },
  };
}

module.exports = { aiSdkSandbox };
