//! One command of a session, built like `std::process::Command`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::child::{SessionChild, Started};
use super::demux::ended;
use super::Session;
use crate::child::{ExitStatus, Output, Stdio};
use crate::error::Error;
use crate::launch::wire::{Control, Report, Spawn, SpawnFailure};
use crate::policy;

/// A command to run in a [`Session`]: its own argv, environment additions,
/// working directory, timeout and stdio. Made by [`Session::command`].
#[derive(Debug)]
pub struct SessionCommand<'s> {
    session: &'s Session,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    grace: Option<Duration>,
    stdio: [Option<Stdio>; 3],
    passes: Vec<(Arc<OwnedFd>, RawFd)>,
}

impl<'s> SessionCommand<'s> {
    pub(crate) fn new(session: &'s Session, argv: Vec<String>) -> Self {
        SessionCommand {
            session,
            argv,
            env: Vec::new(),
            cwd: None,
            timeout: None,
            grace: None,
            stdio: [None, None, None],
            passes: Vec::new(),
        }
    }

    /// Add one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.argv.push(arg.into());
        self
    }
    /// Set (or replace) one environment variable on top of the sandbox's
    /// environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Working directory inside (default: the sandbox's, see
    /// [`Sandbox::cwd`](crate::Sandbox::cwd)).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// Wall-clock limit for this command (default: the sandbox's timeout):
    /// SIGTERM and SIGCONT to the command's process group and session, then
    /// SIGKILL after the grace. Other commands are not touched.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Time between SIGTERM and SIGKILL on timeout (default: the
    /// sandbox's).
    pub fn kill_grace(mut self, t: Duration) -> Self {
        self.grace = Some(t);
        self
    }
    /// The command's stdin.
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdio[0] = Some(s);
        self
    }
    /// The command's stdout.
    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdio[1] = Some(s);
        self
    }
    /// The command's stderr.
    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stdio[2] = Some(s);
        self
    }
    /// Hand `fd` to the command as descriptor `target` (3 to 255), in
    /// addition to the sandbox's own pass-throughs.
    pub fn pass_fd(mut self, fd: impl Into<OwnedFd>, target: RawFd) -> Self {
        self.passes.push((Arc::new(fd.into()), target));
        self
    }

    /// Start the command; stdio defaults to the sandbox's choice, else
    /// inherit. Returns once it has exec'd.
    pub fn spawn(&self) -> Result<SessionChild, Error> {
        self.spawn_with([Stdio::Inherit, Stdio::Inherit, Stdio::Inherit])
    }

    /// Run to completion with stdin from `/dev/null` and stdout/stderr
    /// captured (see [`SessionChild::wait_with_output`]).
    pub fn output(&self) -> Result<Output, Error> {
        self.spawn_with([Stdio::Null, Stdio::Piped, Stdio::Piped])?
            .wait_with_output()
    }

    /// Run to completion with stdio as for [`SessionCommand::spawn`].
    pub fn status(&self) -> Result<ExitStatus, Error> {
        self.spawn()?.wait()
    }

    fn spawn_with(&self, defaults: [Stdio; 3]) -> Result<SessionChild, Error> {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let s = self.session;
        let mut req = self.request()?;
        let [d0, d1, d2] = defaults;
        let choose = |i: usize, d: Stdio| {
            self.stdio[i]
                .clone()
                .or_else(|| s.defaults.stdio[i].clone())
                .unwrap_or(d)
        };
        let (in_child, in_host) = crate::sandbox::connect(choose(0, d0), 0)?;
        let (out_child, out_host) = crate::sandbox::connect(choose(1, d1), 1)?;
        let (err_child, err_host) = crate::sandbox::connect(choose(2, d2), 2)?;
        if let Some((uid, gid)) = s.defaults.pipe_owner {
            for fd in [&in_child, &out_child, &err_child] {
                crate::sandbox::hand_pipe_to(fd, uid, gid);
            }
        }
        let mut fds = vec![in_child, out_child, err_child];
        for (fd, _) in s.defaults.passes.iter().chain(&self.passes) {
            fds.push(fd.try_clone()?);
        }
        let raw: Vec<_> = fds.iter().map(|f| f.as_raw_fd()).collect();

        req.id = s.next_id.fetch_add(1, Ordering::Relaxed);
        let mailbox = s.shared.open_route(req.id, &req.argv)?;
        let id = req.id;
        if let Err(e) = s.shared.send(&Control::Spawn(req), &raw) {
            s.shared.close_route(id);
            return Err(e);
        }
        // The init holds its own copies now.
        drop(fds);
        let pid = match mailbox.reports.recv().map_err(|_| ended())? {
            Report::CommandStarted { pid, .. } => pid as u32,
            Report::CommandFailed { failure, .. } => {
                return Err(match failure {
                    SpawnFailure::Exec { errno } => crate::launch::exec_error(&self.argv[0], errno),
                    SpawnFailure::Setup(f) => Error::Setup(f),
                })
            }
            other => {
                return Err(Error::Helper(format!(
                    "unexpected report from the session's init: {other:?}"
                )))
            }
        };
        let started = Started {
            id,
            pid,
            shared: s.shared.clone(),
            mailbox,
            started,
            started_at,
            landlock_abi: s.landlock_abi,
            proxy: s.proxy.clone(),
        };
        Ok(SessionChild::new(started, [in_host, out_host, err_host]))
    }

    /// Validate this command and compute its [`Spawn`] (id still 0).
    fn request(&self) -> Result<Spawn, Error> {
        let d = &self.session.defaults;
        if self.argv.first().map_or(true, String::is_empty) {
            return Err(Error::policy("no command given"));
        }
        let cwd = match &self.cwd {
            Some(c) => {
                policy::check_cwd(c)?;
                c.to_string_lossy().into_owned()
            }
            None => d.cwd.clone(),
        };
        let timeout = self.timeout.or(d.timeout);
        if let Some(t) = timeout {
            policy::check_timeout(t)?;
        }
        let passes: Vec<_> = d.passes.iter().chain(&self.passes).cloned().collect();
        crate::sandbox::check_pass_targets(&passes)?;
        let mut env = d.env.clone();
        for (k, v) in &self.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        d.tmpdirs.fix(&mut env);
        Ok(Spawn {
            id: 0,
            argv: self.argv.clone(),
            env,
            cwd,
            timeout_ms: timeout.map(|t| t.as_millis().max(1) as u64),
            grace_ms: self.grace.unwrap_or(d.grace).as_millis() as u64,
            pass_fds: passes.iter().map(|&(_, target)| target).collect(),
        })
    }
}
