//! `stockade` for Node: the napi-rs addon behind `require("stockade")`.
//!
//! Thin on purpose: options become a [`stockade::PolicyFile`] (the CLI's and
//! TOML file's policy, validated by the core), and running goes through
//! [`stockade::Sandbox`] and [`stockade::Session`]. What is here: argument
//! conversion, output capture with a cap, the kill switch behind
//! `AbortSignal`, and errors encoded so `index.js` can raise the right class.
//!
//! Every call that can block (spawning a sandbox, waiting for it, closing a
//! session, the doctor) runs on the tokio blocking pool and settles a
//! Promise; the JS thread never waits.

mod job;
mod options;

use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::*;
use napi_derive::napi;

pub use job::{ExitInfo, Job, RunOptions, RunOutput};

/// Prefix of an error reason that carries a core error as JSON (decoded by
/// `index.js` into the matching `SandboxError` subclass).
const MARK: &str = "\u{1}stockade\u{1}";

/// A core error as a napi error: the class name, the core's message, its layer
/// and (setup failures) the step and errno, as JSON behind [`MARK`].
pub(crate) fn to_napi(e: stockade::Error) -> napi::Error {
    use stockade::Error as E;
    let kind = match &e {
        E::Policy(_) => "PolicyError",
        E::Unsupported { .. } => "UnsupportedError",
        E::Helper(_) => "HelperError",
        E::Setup(_) => "SetupError",
        E::NotFound(_) => "NotFoundError",
        E::NotExecutable { .. } => "NotExecutableError",
        _ => "SandboxIOError",
    };
    let mut v = serde_json::json!({
        "kind": kind,
        "message": e.to_string(),
        "layer": e.layer().name(),
    });
    if let E::Setup(f) = &e {
        v["step"] = f.step.clone().into();
        v["errno"] = f.errno.into();
    }
    napi::Error::new(Status::GenericFailure, format!("{MARK}{v}"))
}

pub(crate) fn policy_error(msg: impl Into<String>) -> napi::Error {
    to_napi(stockade::Error::Policy(msg.into()))
}

/// Run `f` on the blocking pool; the Promise settles with its result.
pub(crate) fn blocking<'env, T, F>(env: &'env Env, f: F) -> Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    env.spawn_future(async move {
        napi::bindgen_prelude::spawn_blocking(f)
            .await
            .map_err(|e| napi::Error::from_reason(format!("stockade worker failed: {e}")))?
    })
}

/// A policy, ready to run commands. `options` is the JSON of the options
/// object given to `new Sandbox()`.
#[napi]
pub struct NativeSandbox {
    pub(crate) inner: stockade::Sandbox,
    /// The ids asked for inside: sandboxes with the same key share a
    /// pre-warmed helper (see `prewarm`).
    identity: String,
}

fn identity_key(pf: &stockade::PolicyFile) -> String {
    format!("{:?}:{:?}", pf.uid, pf.gid)
}

#[napi]
impl NativeSandbox {
    #[napi(constructor)]
    pub fn new(options: String) -> Result<Self> {
        let pf = options::policy_file(&options).map_err(to_napi)?;
        let inner = pf.to_sandbox().map_err(to_napi)?;
        // The whole policy (paths, patterns) fails here, not at the first run.
        inner.validate().map_err(to_napi)?;
        Ok(NativeSandbox {
            inner,
            identity: identity_key(&pf),
        })
    }

    /// Load a policy from a TOML file (the CLI's `--policy` format).
    #[napi(factory)]
    pub fn from_toml(path: String) -> Result<Self> {
        let pf = stockade::PolicyFile::from_toml_file(path.as_ref()).map_err(to_napi)?;
        let inner = pf.to_sandbox().map_err(to_napi)?;
        // The whole policy (paths, patterns) fails here, not at the first run.
        inner.validate().map_err(to_napi)?;
        Ok(NativeSandbox {
            inner,
            identity: identity_key(&pf),
        })
    }

    /// Which pre-warmed helper this sandbox can use (same key, same one).
    #[napi(getter)]
    pub fn identity(&self) -> String {
        self.identity.clone()
    }

    /// Keep one sandbox of this policy's identity pre-started (see
    /// `stockade::Sandbox::prewarm`).
    #[napi]
    pub fn prewarm<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let sb = self.inner.clone();
        blocking(env, move || sb.prewarm().map_err(to_napi))
    }

    /// Run to completion, capturing output.
    #[napi]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        job: &Job,
        argv: Vec<String>,
        opts: RunOptions,
        input: Option<Buffer>,
    ) -> Result<PromiseRaw<'env, RunOutput>> {
        job.run(
            env,
            job::Spawner::Sandbox(Box::new(self.inner.clone())),
            argv,
            opts,
            input,
        )
    }

    /// Start with piped stdio; resolves with the host pid of the sandbox's
    /// init once it runs. The parent ends are in `job.fds()` right away.
    #[napi]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        job: &Job,
        argv: Vec<String>,
        opts: RunOptions,
    ) -> Result<PromiseRaw<'env, u32>> {
        job.start(
            env,
            job::Spawner::Sandbox(Box::new(self.inner.clone())),
            argv,
            opts,
        )
    }

    /// Build the sandbox once and keep it as a warm session.
    #[napi]
    pub fn session<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, NativeSession>> {
        let sb = self.inner.clone();
        blocking(env, move || {
            let s = sb.session().map_err(to_napi)?;
            Ok(NativeSession {
                pid: s.pid(),
                inner: Arc::new(RwLock::new(Some(s))),
            })
        })
    }
}

/// A warm session. Commands hold the read lock only while they spawn, so
/// `close` (the write lock) waits for spawns in flight, then ends everything.
#[napi]
pub struct NativeSession {
    pub(crate) inner: Arc<RwLock<Option<stockade::Session>>>,
    pid: u32,
}

#[napi]
impl NativeSession {
    /// Host pid of the session's init.
    #[napi(getter)]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether `close` has been called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    #[napi]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        job: &Job,
        argv: Vec<String>,
        opts: RunOptions,
        input: Option<Buffer>,
    ) -> Result<PromiseRaw<'env, RunOutput>> {
        job.run(
            env,
            job::Spawner::Session(self.inner.clone()),
            argv,
            opts,
            input,
        )
    }

    #[napi]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        job: &Job,
        argv: Vec<String>,
        opts: RunOptions,
    ) -> Result<PromiseRaw<'env, u32>> {
        job.start(env, job::Spawner::Session(self.inner.clone()), argv, opts)
    }

    /// End the session: kill every command and wait until every process of
    /// the sandbox is gone. Idempotent.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        blocking(env, move || {
            let taken = inner.write().unwrap_or_else(|e| e.into_inner()).take();
            match taken {
                Some(s) => s.close().map_err(to_napi),
                None => Ok(()),
            }
        })
    }
}

/// Check every layer on this host; the core's report as JSON text.
#[napi]
pub fn doctor(env: &Env) -> Result<PromiseRaw<'_, String>> {
    blocking(env, || {
        let report = stockade::doctor();
        let mut v =
            serde_json::to_value(&report).map_err(|e| napi::Error::from_reason(e.to_string()))?;
        if let Some(m) = v.as_object_mut() {
            m.insert("ok".into(), report.ok().into());
        }
        Ok(v.to_string())
    })
}

/// Set the process-wide `stockade-init` helper path (first call wins).
#[napi]
pub fn set_helper_path(path: String) -> bool {
    stockade::set_helper_path(path)
}

/// The option names `new Sandbox()` accepts.
#[napi]
pub fn sandbox_option_names() -> Vec<&'static str> {
    options::SANDBOX_KEYS.to_vec()
}
