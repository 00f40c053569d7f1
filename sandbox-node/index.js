'use strict';
// stockade for Node: run untrusted commands inside a kernel-enforced Linux
// sandbox. A thin layer over the native addon (sandbox-core does the work):
// argument checks, AbortSignal wiring, streams, and error classes.

const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const os = require('node:os');
const { EventEmitter } = require('node:events');

const native = require('./native/stockade.node');
const errors = require('./lib/errors.js');
const { translate, PolicyError, AbortError } = errors;

// Node 20 has Symbol.asyncDispose; older runtimes get the registry symbol
// that TypeScript's and other polyfills use.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('Symbol.asyncDispose') });
}

// The stockade-init helper built next to this file. An explicit STOCKADE_INIT
// wins (the core looks at it only when no process-wide path is set).
const HELPER = path.join(__dirname, 'stockade-init');
if (!process.env.STOCKADE_INIT) {
  try {
    fs.accessSync(HELPER, fs.constants.X_OK);
    native.setHelperPath(HELPER);
  } catch {
    // Not built: the core reports a clear HelperError at the first spawn.
  }
}

const RUN_KEYS = ['cwd', 'signal', 'maxOutput', 'input', 'timeoutMs', 'shell', 'env', 'encoding'];
const SPAWN_KEYS = ['cwd', 'signal', 'timeoutMs', 'shell', 'env', 'stdin', 'stdout', 'stderr'];

function checkOptions(opts, known, what) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(`${what} options must be an object, got ${typeof opts}`);
  }
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) {
      throw new PolicyError(`unknown ${what} option \`${k}\` (known options: ${known.join(', ')})`);
    }
  }
  return opts;
}

function argvOf(cmd, shell) {
  if (shell) {
    if (typeof cmd !== 'string') {
      throw new PolicyError('with shell: true, the command must be a single string');
    }
    return ['/bin/sh', '-c', cmd];
  }
  if (typeof cmd === 'string') {
    throw new PolicyError('the command must be an array of strings (or pass shell: true to run a string)');
  }
  if (!Array.isArray(cmd) || cmd.some((a) => typeof a !== 'string')) {
    throw new TypeError('the command must be an array of strings');
  }
  if (cmd.length === 0) throw new PolicyError('the command must not be empty');
  return cmd;
}

function checkSignal(signal) {
  if (signal !== undefined && signal !== null &&
      (typeof signal !== 'object' || typeof signal.aborted !== 'boolean' ||
       typeof signal.addEventListener !== 'function')) {
    throw new TypeError('the signal option must be an AbortSignal');
  }
  return signal || undefined;
}

function checkEncoding(encoding) {
  if (encoding === undefined || encoding === null) return 'utf8';
  if (encoding === 'buffer' || Buffer.isEncoding(encoding)) return encoding;
  throw new PolicyError(`invalid encoding \`${encoding}\`: expected "buffer" or a Buffer encoding such as "utf8"`);
}

function nativeOptions(o) {
  const out = {};
  if (o.cwd !== undefined && o.cwd !== null) {
    if (typeof o.cwd !== 'string') throw new PolicyError('option `cwd` must be a string');
    out.cwd = o.cwd;
  }
  for (const k of ['timeoutMs', 'maxOutput']) {
    if (o[k] !== undefined && o[k] !== null) {
      if (typeof o[k] !== 'number') throw new PolicyError(`option \`${k}\` must be a number`);
      out[k] = o[k];
    }
  }
  if (o.env !== undefined && o.env !== null) {
    if (typeof o.env !== 'object' || Array.isArray(o.env)) {
      throw new PolicyError('option `env` must be an object of strings');
    }
    for (const [k, v] of Object.entries(o.env)) {
      if (typeof v !== 'string') {
        throw new PolicyError(`option \`env\`: the value of \`${k}\` must be a string, got ${typeof v}`);
      }
    }
    out.env = o.env;
  }
  for (const k of ['stdin', 'stdout', 'stderr']) {
    if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
  }
  return out;
}

function inputOf(input) {
  if (input === undefined || input === null) return undefined;
  if (typeof input === 'string') return Buffer.from(input);
  if (Buffer.isBuffer(input)) return input;
  if (input instanceof Uint8Array) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  throw new PolicyError('option `input` must be a string, a Buffer or a Uint8Array');
}

const SIGNAL_NAMES = Object.fromEntries(
  Object.entries(os.constants.signals).map(([name, num]) => [num, name]),
);

function signalNumber(sig) {
  if (sig === undefined || sig === null) return os.constants.signals.SIGTERM;
  if (typeof sig === 'number' && Number.isInteger(sig)) return sig;
  if (typeof sig === 'string' && os.constants.signals[sig] !== undefined) {
    return os.constants.signals[sig];
  }
  throw new PolicyError(`unknown signal ${String(sig)}`);
}

function decode(buf, encoding) {
  return encoding === 'buffer' ? buf : buf.toString(encoding);
}

function exitFields(raw) {
  return {
    exitCode: raw.exitCode,
    signal: raw.signal == null ? null : (SIGNAL_NAMES[raw.signal] || raw.signal),
    timedOut: raw.timedOut,
    oomKilled: raw.oomKilled ?? null,
    durationMs: raw.durationMs,
    peakMemory: raw.peakMemory ?? null,
    events: JSON.parse(raw.eventsJson),
  };
}

// Pre-warming (the core's Sandbox::prewarm): one helper kept started, its
// init already in fresh namespaces, so the next sandbox skips that part
// (measured: about half of a cold run). Process-wide, one slot; enabled once
// per identity (the uid/gid asked for inside) at the first run or spawn.
// STOCKADE_NO_PREWARM=1 turns it off.
const prewarmed = new Set();
function autoPrewarm(target) {
  if (!(target instanceof native.NativeSandbox) || process.env.STOCKADE_NO_PREWARM) return;
  const key = target.identity;
  if (prewarmed.has(key)) return;
  prewarmed.add(key);
  // Best effort: a failure here shows again, clearly, in the real spawn.
  target.prewarm().catch(() => prewarmed.delete(key));
}

/** Run on a NativeSandbox or NativeSession; settles with a RunResult. */
async function runOn(target, cmd, options) {
  const o = checkOptions(options, RUN_KEYS, 'run()');
  const argv = argvOf(cmd, o.shell);
  const signal = checkSignal(o.signal);
  const encoding = checkEncoding(o.encoding);
  const nopts = nativeOptions(o);
  const input = inputOf(o.input);
  if (signal?.aborted) throw new AbortError(signal.reason);
  const job = new native.Job();
  autoPrewarm(target);
  const onAbort = () => job.kill();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const raw = await target.run(job, argv, nopts, input);
    if (signal?.aborted) throw new AbortError(signal.reason);
    return {
      ...exitFields(raw),
      stdout: decode(raw.stdout, encoding),
      stderr: decode(raw.stderr, encoding),
      output: decode(Buffer.concat([raw.stdout, raw.stderr]), encoding),
      truncated: raw.truncated,
      ok: raw.exitCode === 0 && !raw.timedOut,
    };
  } catch (e) {
    if (signal?.aborted) throw new AbortError(signal.reason);
    throw translate(e);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function adoptFd(fd, readable) {
  if (fd === undefined || fd === null) return null;
  const s = new net.Socket({ fd, readable, writable: !readable });
  if (!readable) {
    // Writing after the command has exited fails with EPIPE: not the host's
    // problem (an unhandled 'error' would crash it). Listen to see them.
    s.on('error', () => {});
  }
  return s;
}

/**
 * A command started with `spawn()`: streams now, `pid` once it runs.
 * Events: 'spawn' (pid), 'exit' (exitCode, signal), 'error' (err).
 */
class SandboxProcess extends EventEmitter {
  #job;
  #exited;
  #signal;
  #onAbort;

  constructor(target, cmd, options) {
    super();
    const o = checkOptions(options, SPAWN_KEYS, 'spawn()');
    const argv = argvOf(cmd, o.shell);
    const signal = checkSignal(o.signal);
    const nopts = nativeOptions(o);
    this.pid = undefined;
    this.exitCode = null;
    this.signalCode = null;
    this.killed = false;
    const job = new native.Job();
    this.#job = job;
    autoPrewarm(target);
    if (signal?.aborted) job.kill();
    let started;
    try {
      started = target.start(job, argv, nopts);
    } catch (e) {
      throw translate(e);
    }
    const fds = job.takeFds() || {};
    /** @type {import('node:net').Socket | null} */
    this.stdin = adoptFd(fds.stdin, false);
    this.stdout = adoptFd(fds.stdout, true);
    this.stderr = adoptFd(fds.stderr, true);
    if (signal) {
      this.#signal = signal;
      this.#onAbort = () => { this.killed = true; job.kill(); };
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.ready = started.then(
      (pid) => {
        this.pid = pid;
        this.emit('spawn', pid);
        return pid;
      },
      (e) => {
        throw this.#fail(e);
      },
    );
    this.#exited = this.ready.then(
      () => job.wait().then(
        (raw) => {
          const r = exitFields(raw);
          this.exitCode = r.exitCode;
          this.signalCode = r.signal;
          this.emit('exit', r.exitCode, r.signal);
          if (this.#signal?.aborted) throw new AbortError(this.#signal.reason);
          return r;
        },
        (e) => { throw this.#fail(e); },
      ),
    ).finally(() => this.#signal?.removeEventListener('abort', this.#onAbort));
    // wait() hands the rejection to the caller; without one, 'error' only.
    this.ready.catch(() => {});
    this.#exited.catch(() => {});
  }

  #fail(e) {
    const err = this.#signal?.aborted ? new AbortError(this.#signal.reason) : translate(e);
    if (!err.__stockadeEmitted) {
      Object.defineProperty(err, '__stockadeEmitted', { value: true });
      if (this.listenerCount('error') > 0) this.emit('error', err);
    }
    return err;
  }

  /** Wait for the command to end; resolves with its ExitResult. */
  wait() {
    return this.#exited;
  }

  /** Send a signal (default SIGTERM; "SIGKILL" ends the whole tree). */
  kill(signal = 'SIGTERM') {
    const num = signalNumber(signal);
    try {
      this.#job.kill(num);
    } catch (e) {
      throw translate(e);
    }
    this.killed = true;
    return true;
  }
}

/**
 * A sandbox policy. Construct once, run many commands; each `run` or `spawn`
 * gets a fresh sandbox.
 */
class Sandbox {
  #native;

  constructor(options = {}) {
    if (options instanceof native.NativeSandbox) {
      this.#native = options;
      return;
    }
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError('Sandbox options must be an object');
    }
    let json;
    try {
      json = JSON.stringify(options, (key, value) => {
        if (value === undefined) return null;
        if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
          throw new PolicyError(`option \`${key}\` must not be a ${typeof value}`);
        }
        return value;
      });
    } catch (e) {
      if (e instanceof PolicyError) throw e;
      throw new PolicyError(`options cannot be read: ${e.message}`);
    }
    try {
      this.#native = new native.NativeSandbox(json);
    } catch (e) {
      throw translate(e);
    }
  }

  /** Load a policy from a TOML file (the CLI's `--policy` format). */
  static fromToml(file) {
    if (typeof file !== 'string') throw new TypeError('the policy path must be a string');
    try {
      return new Sandbox(native.NativeSandbox.fromToml(file));
    } catch (e) {
      throw translate(e);
    }
  }

  /** Run a command to completion in a fresh sandbox and capture its output. */
  run(cmd, options) {
    return runOn(this.#native, cmd, options);
  }

  /** Start a command in a fresh sandbox with streamed stdio. */
  spawn(cmd, options) {
    return new SandboxProcess(this.#native, cmd, options);
  }

  /** Build the sandbox once and keep it warm: many cheap commands. */
  async session() {
    try {
      return new Session(await this.#native.session());
    } catch (e) {
      throw translate(e);
    }
  }

  /**
   * Keep one sandbox of this policy's identity pre-started, so the next
   * `run`/`spawn` skips the helper's start (process-wide, one at a time).
   */
  async prewarm() {
    try {
      prewarmed.add(this.#native.identity);
      await this.#native.prewarm();
    } catch (e) {
      throw translate(e);
    }
  }
}

/** A warm sandbox: its init stays up and each command starts inside it. */
class Session {
  #native;

  constructor(nativeSession) {
    if (!(nativeSession instanceof native.NativeSession)) {
      throw new TypeError('use `await sandbox.session()` to start a session');
    }
    this.#native = nativeSession;
  }

  /** Host pid of the session's init. */
  get pid() {
    return this.#native.pid;
  }

  get closed() {
    return this.#native.closed;
  }

  /** Same as `Sandbox.run`, inside this session. */
  run(cmd, options) {
    return runOn(this.#native, cmd, options);
  }

  /** Same as `Sandbox.spawn`, inside this session (`pid` is the pid inside). */
  spawn(cmd, options) {
    return new SandboxProcess(this.#native, cmd, options);
  }

  /** End the session: kill every command, wait until all is gone. Idempotent. */
  async close() {
    try {
      await this.#native.close();
    } catch (e) {
      throw translate(e);
    }
  }

  [Symbol.asyncDispose]() {
    return this.close();
  }
}

/** Check every layer on this host; resolves with the core's report (plus `ok`). */
async function doctor() {
  try {
    return JSON.parse(await native.doctor());
  } catch (e) {
    throw translate(e);
  }
}

/** Set the process-wide helper path (first call wins; index.js sets it at load). */
function setHelperPath(p) {
  return native.setHelperPath(String(p));
}

module.exports = {
  Sandbox,
  Session,
  SandboxProcess,
  doctor,
  setHelperPath,
  helperPath: HELPER,
  ...errors.classes,
  AbortError,
  aiSdkSandbox: require('./lib/ai-sdk.js').aiSdkSandbox,
};
