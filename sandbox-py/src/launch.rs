//! Where a command starts: a fresh sandbox of its own, or a warm session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stockade::{Error, Stdio};

use crate::child::AnyChild;

/// What one call asks for besides the policy.
pub struct Call {
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub stdio: [Stdio; 3],
}

#[derive(Clone)]
pub enum Target {
    /// Every command gets a sandbox of its own, built from this policy.
    Sandbox(Box<stockade::Sandbox>),
    /// Commands run inside one warm sandbox.
    Session(Arc<stockade::Session>),
}

impl Target {
    /// Start the command. Blocks for the sandbox's setup: call it without
    /// the GIL.
    pub fn launch(&self, call: Call) -> Result<AnyChild, Error> {
        let [stdin, stdout, stderr] = call.stdio;
        match self {
            Target::Sandbox(sb) => {
                let mut sb = sb
                    .clone()
                    .command(call.argv)
                    .stdin(stdin)
                    .stdout(stdout)
                    .stderr(stderr);
                if let Some(c) = call.cwd {
                    sb = sb.cwd(c);
                }
                if let Some(t) = call.timeout {
                    sb = sb.timeout(t);
                }
                sb.spawn().map(|c| AnyChild::Plain(Box::new(c)))
            }
            Target::Session(s) => {
                let mut cmd = s
                    .command(call.argv)
                    .stdin(stdin)
                    .stdout(stdout)
                    .stderr(stderr);
                if let Some(c) = call.cwd {
                    cmd = cmd.cwd(c);
                }
                if let Some(t) = call.timeout {
                    cmd = cmd.timeout(t);
                }
                cmd.spawn().map(AnyChild::Session)
            }
        }
    }
}
