'use strict';
// The error classes, named like the Python binding's. Native errors arrive
// as a napi Error whose message is MARK + JSON {kind, message, layer, step?,
// errno?}; translate() turns them into the matching class.

const MARK = '\u0001stockade\u0001';

/** Base class of every stockade error; `layer` names the sandbox layer. */
class SandboxError extends Error {
  constructor(message, layer = 'supervisor', options) {
    super(message, options);
    this.name = new.target.name;
    this.layer = layer;
  }
}
/** The policy or an option is invalid; nothing was started. */
class PolicyError extends SandboxError {
  constructor(message, layer = 'policy', options) {
    super(message, layer, options);
  }
}
/** The policy asks for something this host or build cannot enforce. */
class UnsupportedError extends SandboxError {}
/** The stockade-init helper is missing, not runnable, or from another version. */
class HelperError extends SandboxError {}
/** A sandbox layer could not be set up; nothing ran (see `layer`, `step`, `errno`). */
class SetupError extends SandboxError {}
/** The program does not exist inside the sandbox. */
class NotFoundError extends SandboxError {}
/** The program exists inside the sandbox but cannot be executed. */
class NotExecutableError extends SandboxError {}
/** Talking to the sandbox failed (or the session is closed). */
class SandboxIOError extends SandboxError {}

const classes = {
  SandboxError,
  PolicyError,
  UnsupportedError,
  HelperError,
  SetupError,
  NotFoundError,
  NotExecutableError,
  SandboxIOError,
};

/** Like Node's own: `name` "AbortError", `code` "ABORT_ERR", `cause` the signal's reason. */
class AbortError extends Error {
  constructor(reason) {
    super('The operation was aborted', reason === undefined ? undefined : { cause: reason });
    this.name = 'AbortError';
    this.code = 'ABORT_ERR';
  }
}

function translate(e) {
  if (!(e instanceof Error) || typeof e.message !== 'string' || !e.message.startsWith(MARK)) {
    return e;
  }
  let info;
  try {
    info = JSON.parse(e.message.slice(MARK.length));
  } catch {
    return e;
  }
  const Cls = classes[info.kind] || SandboxIOError;
  const err = new Cls(info.message, info.layer);
  if (info.kind === 'SetupError') {
    err.step = info.step;
    err.errno = info.errno;
  }
  return err;
}

module.exports = { classes, translate, AbortError, ...classes };
