// Type definitions for stockade (Node binding). Handwritten; kept in step
// with index.js and src/options.rs.
/// <reference types="node" />

import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';

/**
 * Policy options of `new Sandbox()`: camelCase names for the fields of the
 * core's policy (the CLI's `run` options and TOML keys). An unknown key, or a
 * value of the wrong type, throws `PolicyError`; nothing is ignored.
 */
export interface SandboxOptions {
  /** `"none"` (default: loopback only) or `"proxy"` (implied by `allowDomain`). */
  net?: 'none' | 'proxy' | null;
  /** `SRC[:DST]` read-only binds; DST defaults to SRC made absolute. */
  ro?: string[] | null;
  /** `SRC[:DST]` read-write binds (relative SRC like `"./repo"` is from the cwd). */
  rw?: string[] | null;
  /** `SRC[:DST]` writable views whose writes are discarded at exit. */
  overlay?: string[] | null;
  /** `DST[:SIZE]` private tmpfs mounts, e.g. `"/scratch:64M"`. */
  tmpfs?: string[] | null;
  /** Domains allowed through the egress proxy; `*.x.com` matches subdomains only. */
  allowDomain?: string[] | null;
  /** Domains denied (deny wins over allow). */
  denyDomain?: string[] | null;
  /** CIDRs an allowed name may resolve into (internal addresses are refused by default). */
  allowPrivate?: string[] | null;
  /** `HOST:ADDR` static entries for the proxy's resolver. */
  resolve?: string[] | null;
  /** Memory cap: `"512M"`, `"2G"`, or a number of bytes. */
  memory?: string | number | null;
  /** Process cap. */
  pids?: number | null;
  /** CPU cap in cores, e.g. `1.5`. */
  cpu?: number | null;
  /** Wall-clock limit in milliseconds for every command; the whole tree is killed (exit 124). */
  timeoutMs?: number | null;
  /** Extra environment (the host's is cleared except locale and terminal variables). */
  env?: Record<string, string> | null;
  /** Host variables passed through by name. */
  passEnv?: string[] | null;
  /** Working directory inside (default: the first rw destination, else `/`). */
  cwd?: string | null;
  /** Hostname inside (default `stockade`). */
  hostname?: string | null;
  /** User id inside. */
  uid?: number | null;
  /** Group id inside. */
  gid?: number | null;
  /** Size cap of the private `/tmp`, e.g. `"256M"`. */
  tmpSize?: string | number | null;
  /** Syscalls allowed on top of the default seccomp allowlist. */
  syscallsAllow?: string[] | null;
  /** Syscalls refused with EPERM (wins over `syscallsAllow`). */
  syscallsDeny?: string[] | null;
  /** Allow TCP on the sandbox's own loopback (servers inside). */
  loopbackTcp?: boolean | null;
  /** Run without Landlock on a host that lacks it (otherwise that is an error). */
  allowNoLandlock?: boolean | null;
}

/** `"buffer"` for Buffers, or a Buffer encoding for strings (default `"utf8"`). */
export type Encoding = 'buffer' | BufferEncoding;

/** Options of `run()`. Unknown keys throw `PolicyError`. */
export interface RunOptions<E extends Encoding = 'utf8'> {
  /** Working directory inside the sandbox. */
  cwd?: string;
  /**
   * Aborting kills the whole sandboxed tree, also while the command runs,
   * and the promise rejects with an `AbortError`.
   */
  signal?: AbortSignal;
  /** Keep at most this many bytes of stdout and of stderr; the rest is read and dropped (`truncated`). */
  maxOutput?: number;
  /** Fed to stdin (otherwise stdin is /dev/null). */
  input?: string | Buffer | Uint8Array;
  /** Overrides the policy's `timeoutMs` for this command. */
  timeoutMs?: number;
  /** Run `cmd` (a single string) with `/bin/sh -c`. */
  shell?: boolean;
  /** Added to the policy's environment for this command. */
  env?: Record<string, string>;
  /** How stdout/stderr/output are returned (default `"utf8"` strings). */
  encoding?: E;
}

/** How a command ended. */
export interface ExitResult {
  /** The program's exit code; 128+N when killed by signal N; 124 on timeout. */
  exitCode: number;
  /** The signal that ended the program (`"SIGKILL"`), or null. */
  signal: NodeJS.Signals | null;
  /** Whether the timeout fired and the whole tree was killed. */
  timedOut: boolean;
  /** Whether the OOM killer fired; null when no memory cgroup was used. */
  oomKilled: boolean | null;
  /** Wall-clock milliseconds from spawn to the end of the whole tree. */
  durationMs: number;
  /** Peak memory in bytes; null without limits. */
  peakMemory: number | null;
  /** The egress proxy's decisions (`net: "proxy"`); empty otherwise. */
  events: Array<Record<string, unknown>>;
}

/** What `run()` resolves with. */
export interface RunResult<T extends string | Buffer = string> extends ExitResult {
  stdout: T;
  stderr: T;
  /** stdout followed by stderr (not interleaved in time order). */
  output: T;
  /** Whether stdout or stderr was cut at `maxOutput`. */
  truncated: boolean;
  /** `exitCode === 0 && !timedOut`. */
  ok: boolean;
}

type Out<E> = E extends 'buffer' ? Buffer : string;

/** Options of `spawn()`. Unknown keys throw `PolicyError`. */
export interface SpawnOptions {
  cwd?: string;
  /** Aborting kills the tree; `wait()` rejects with `AbortError`. */
  signal?: AbortSignal;
  timeoutMs?: number;
  shell?: boolean;
  env?: Record<string, string>;
  /** Each stream: `"pipe"` (default), `"ignore"` or `"inherit"`. */
  stdin?: 'pipe' | 'ignore' | 'inherit';
  stdout?: 'pipe' | 'ignore' | 'inherit';
  stderr?: 'pipe' | 'ignore' | 'inherit';
}

/**
 * A command started by `spawn()`. The streams exist at once; `pid` once the
 * sandbox is up (`await p.ready` or the `'spawn'` event).
 *
 * Events: `'spawn'` (pid), `'exit'` (exitCode, signal), `'error'` (err; only
 * emitted when a listener is attached, `wait()` rejects either way).
 */
export declare class SandboxProcess extends EventEmitter {
  /** Host pid of the sandbox's init (for a session command: its pid inside). */
  pid: number | undefined;
  /** A socket on the command's stdin pipe (null unless `"pipe"`). Write errors after the command exits are swallowed. */
  stdin: Writable | null;
  /** A socket on the command's stdout pipe: a Readable, async iterable. */
  stdout: Readable | null;
  stderr: Readable | null;
  exitCode: number | null;
  signalCode: NodeJS.Signals | null;
  /** Whether `kill()` was called or the signal aborted. */
  killed: boolean;
  /** Resolves with `pid` once the command runs; rejects if it could not start. */
  readonly ready: Promise<number>;
  /** Wait for the command to end (the streams may still hold unread data). */
  wait(): Promise<ExitResult>;
  /**
   * Send a signal (default `"SIGTERM"`) to every process of the sandbox (for a
   * session command: its process groups). `"SIGKILL"` ends the whole tree.
   * Sent before the sandbox is up, it is delivered as soon as it is.
   */
  kill(signal?: NodeJS.Signals | number): boolean;
}

interface Runner {
  /**
   * Run a command to completion and capture its output. Never blocks the
   * event loop. `cmd` is an argv array, or a string with `shell: true`.
   */
  run(cmd: string[] | string, options?: RunOptions<'utf8'>): Promise<RunResult<string>>;
  run<E extends Encoding>(cmd: string[] | string, options: RunOptions<E>): Promise<RunResult<Out<E>>>;
  /** Start a command with streamed stdio. */
  spawn(cmd: string[] | string, options?: SpawnOptions): SandboxProcess;
}

/**
 * A sandbox policy. Construct once, run many commands; each `run`/`spawn`
 * gets a fresh sandbox.
 *
 * @example
 * const sb = new Sandbox({ ro: ["/data"], rw: ["./repo"], memory: "512M", timeoutMs: 30_000 });
 * const r = await sb.run(["npm", "test"], { cwd: "/repo", signal });
 */
export declare class Sandbox implements Runner {
  /** @throws {PolicyError} on an unknown key or a malformed value. */
  constructor(options?: SandboxOptions);
  /** Load a policy from a TOML file (the CLI's `--policy` format). */
  static fromToml(path: string): Sandbox;
  run(cmd: string[] | string, options?: RunOptions<'utf8'>): Promise<RunResult<string>>;
  run<E extends Encoding>(cmd: string[] | string, options: RunOptions<E>): Promise<RunResult<Out<E>>>;
  spawn(cmd: string[] | string, options?: SpawnOptions): SandboxProcess;
  /**
   * Build the sandbox once and keep it warm: each command then starts inside
   * it in about a millisecond. Commands share its files (/tmp, overlays) and
   * limits. Close it with `close()` or `await using`.
   */
  session(): Promise<Session>;
  /**
   * Keep one sandbox of this policy's identity pre-started, so the next
   * `run`/`spawn` skips starting the helper (process-wide; refilled after use).
   */
  prewarm(): Promise<void>;
}

/**
 * A warm sandbox. `await using s = await sb.session()` (Node 24+; on Node 20
 * call `await s.close()` or `await s[Symbol.asyncDispose]()`).
 */
export declare class Session implements Runner, AsyncDisposable {
  private constructor();
  /** Host pid of the session's init. */
  readonly pid: number;
  readonly closed: boolean;
  run(cmd: string[] | string, options?: RunOptions<'utf8'>): Promise<RunResult<string>>;
  run<E extends Encoding>(cmd: string[] | string, options: RunOptions<E>): Promise<RunResult<Out<E>>>;
  spawn(cmd: string[] | string, options?: SpawnOptions): SandboxProcess;
  /** Kill every command and wait until every process is gone. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The structured report of `doctor()` (the core's, plus `ok`). */
export interface DoctorReport {
  ok: boolean;
  [key: string]: unknown;
}

/** Check every layer on this host (static probes and one real sandbox). */
export declare function doctor(): Promise<DoctorReport>;

/** Use this stockade-init helper (first call wins; set at load to the bundled one unless STOCKADE_INIT is set). */
export declare function setHelperPath(path: string): boolean;

/** Path of the helper bundled with the package. */
export declare const helperPath: string;

/** The Vercel-AI-SDK-shaped session returned by `aiSdkSandbox()`. */
export interface AiSdkSandbox {
  /**
   * A string `command` runs with `/bin/sh -c`; an array runs as argv.
   * Aborting `abortSignal` kills the command (rejects with `AbortError`).
   */
  run(request: {
    command: string | string[];
    workingDirectory?: string;
    env?: Record<string, string>;
    abortSignal?: AbortSignal;
    timeoutMs?: number;
    maxOutput?: number;
  }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Close the wrapped session (no-op for a Sandbox). */
  close(): Promise<void>;
}

/** Wrap a Sandbox (fresh sandbox per call) or a Session (shared files) for an agent's sandbox tool. */
export declare function aiSdkSandbox(target: Sandbox | Session): AiSdkSandbox;

/** Base class of every stockade error. */
export declare class SandboxError extends Error {
  /** The sandbox layer: "policy", "helper", "filesystem", "seccomp", "exec", ... */
  layer: string;
}
/** The policy or an option is invalid; nothing was started. */
export declare class PolicyError extends SandboxError {}
/** The policy asks for something this host or build cannot enforce. */
export declare class UnsupportedError extends SandboxError {}
/** The stockade-init helper is missing, not runnable, or from another version. */
export declare class HelperError extends SandboxError {}
/** A sandbox layer could not be set up; nothing ran. */
export declare class SetupError extends SandboxError {
  /** The failed operation, e.g. `mount /usr`. */
  step: string;
  /** Raw errno (0 when the failure was not a syscall). */
  errno: number;
}
/** The program does not exist inside the sandbox. */
export declare class NotFoundError extends SandboxError {}
/** The program exists inside the sandbox but cannot be executed. */
export declare class NotExecutableError extends SandboxError {}
/** Talking to the sandbox failed, or the session is closed. */
export declare class SandboxIOError extends SandboxError {}
/** Rejection of an aborted call: `name` "AbortError", `code` "ABORT_ERR", `cause` the signal's reason. */
export declare class AbortError extends Error {
  code: 'ABORT_ERR';
}

declare const stockade: {
  Sandbox: typeof Sandbox;
  Session: typeof Session;
  SandboxProcess: typeof SandboxProcess;
  doctor: typeof doctor;
  setHelperPath: typeof setHelperPath;
  helperPath: string;
  aiSdkSandbox: typeof aiSdkSandbox;
  SandboxError: typeof SandboxError;
  PolicyError: typeof PolicyError;
  UnsupportedError: typeof UnsupportedError;
  HelperError: typeof HelperError;
  SetupError: typeof SetupError;
  NotFoundError: typeof NotFoundError;
  NotExecutableError: typeof NotExecutableError;
  SandboxIOError: typeof SandboxIOError;
  AbortError: typeof AbortError;
};
export default stockade;
