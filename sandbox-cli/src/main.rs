//! `stockade`: the command-line front end. Thin: options become a
//! [`stockade::PolicyFile`], the core does the rest. The options, defaults and
//! exit codes are the stable contract of DESIGN.md.

mod attest;
mod report;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};
use stockade::{Error, PolicyFile};

/// Exit status when the sandbox could not be set up (nothing ran).
const SETUP_FAILED: u8 = 125;

#[derive(Parser, Debug)]
#[command(
    name = "stockade",
    version,
    about = "Run untrusted tool calls in a kernel-enforced sandbox"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run PROGRAM inside a sandbox.
    Run(Box<RunArgs>),
    /// Report, for each sandbox layer, whether this host can enforce it and how to fix it.
    Doctor {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check a running sandbox's containment from outside, reading only kernel state:
    /// exit 0 when every property holds, 1 when one fails, 125 when PID cannot be attested.
    Attest {
        /// Host pid of the sandbox's init or of any process in it.
        pid: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// TOML policy file; command-line options add to it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Bind SRC read-only at DST (default DST = SRC).
    #[arg(long, value_name = "SRC[:DST]")]
    ro: Vec<String>,
    /// Bind SRC read-write at DST.
    #[arg(long, value_name = "SRC[:DST]")]
    rw: Vec<String>,
    /// SRC visible and writable at DST; writes are discarded at exit.
    #[arg(long, value_name = "SRC[:DST]")]
    overlay: Vec<String>,
    /// Private tmpfs at DST (size like 64M).
    #[arg(long, value_name = "DST[:SIZE]")]
    tmpfs: Vec<String>,
    /// Working directory inside (default: first --rw DST, else /).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// none (loopback only, the default) or proxy.
    #[arg(long, value_name = "none|proxy")]
    net: Option<String>,
    /// Allow a domain through the proxy (implies --net proxy).
    #[arg(long, value_name = "PAT")]
    allow_domain: Vec<String>,
    /// Deny a domain (deny wins over allow).
    #[arg(long, value_name = "PAT")]
    deny_domain: Vec<String>,
    /// Let allowed names resolve into CIDR.
    #[arg(long, value_name = "CIDR")]
    allow_private: Vec<String>,
    /// Static address for HOST in the proxy's resolver.
    #[arg(long, value_name = "HOST:ADDR")]
    resolve: Vec<String>,
    /// Memory limit (like 512M).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Process limit.
    #[arg(long, value_name = "N")]
    pids: Option<u64>,
    /// CPU limit in cores.
    #[arg(long, value_name = "CORES")]
    cpu: Option<f64>,
    /// Wall-clock limit in seconds; the whole process tree is killed.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Set an environment variable (the environment is cleared except a safe set).
    #[arg(long, value_name = "K=V")]
    env: Vec<String>,
    /// Pass a variable of the caller's environment through.
    #[arg(long, value_name = "K")]
    pass_env: Vec<String>,
    /// Write the JSON result here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write every event (start, proxy decisions, refused syscalls, limit
    /// hits, exit) here as JSON lines, as they happen.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// After the command, write what it changed under each --overlay path
    /// (created, modified, deleted, renamed) here as JSON.
    #[arg(long, value_name = "FILE")]
    diff: Option<PathBuf>,
    /// If the command exits 0, apply every change it made under each
    /// --overlay path to the host copy (file by file, atomically, never
    /// through a symlink or outside the tree).
    #[arg(long)]
    apply: bool,
    /// Hostname inside (default stockade).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// User id inside (default: the caller's).
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,
    /// Group id inside (default: the caller's).
    #[arg(long, value_name = "GID")]
    gid: Option<u32>,
    /// Size cap of the private /tmp (default 256M).
    #[arg(long, value_name = "SIZE")]
    tmp_size: Option<String>,
    /// Allow a syscall the default seccomp allowlist refuses (repeatable;
    /// x86_64 names like `ptrace`; an unknown name is an error).
    #[arg(long, value_name = "NAME")]
    syscalls_allow: Vec<String>,
    /// Refuse a syscall with EPERM (repeatable; wins over --syscalls-allow).
    #[arg(long, value_name = "NAME")]
    syscalls_deny: Vec<String>,
    /// Let the command use TCP on the sandbox's own loopback (test and dev
    /// servers); by default Landlock denies TCP bind and connect. The network
    /// namespace still has only loopback.
    #[arg(long)]
    loopback_tcp: bool,
    /// Run without Landlock on a host that lacks it (by default that is an
    /// error); namespaces, seccomp and dropped capabilities still apply.
    #[arg(long)]
    allow_no_landlock: bool,
    /// On a host without user namespaces, run in reduced mode instead of
    /// failing: Landlock, seccomp, no capabilities and limits, but no
    /// namespaces and no pivot_root (the command sees host processes and
    /// the host's network interfaces; see the README's "Reduced mode").
    #[arg(long)]
    allow_reduced: bool,
    /// Do not record refused syscalls: the filter refuses them in the kernel
    /// and they are not events (with --events or --report, each refusal is
    /// by default answered by this process and recorded; allowed syscalls
    /// are not affected).
    #[arg(long)]
    no_syscall_events: bool,
    /// Show a toolchain installed in your home, read-only: python (pyenv,
    /// ~/.local), node (nvm), rust (rustup, ~/.cargo/bin). Repeatable.
    #[arg(long, value_name = "python|node|rust")]
    preset: Vec<String>,
    /// The presets' caches (~/.cache/pip, ~/.npm, ~/.cargo/registry and
    /// git): ro, overlay (writable, discarded at exit; default) or persist
    /// (writes land on the host).
    #[arg(long, value_name = "ro|overlay|persist")]
    cache: Option<String>,
    /// Bind your ssh-agent socket ($SSH_AUTH_SOCK) in at
    /// /run/ssh-agent.sock: the command can make the agent sign with your
    /// keys while it runs, but not read them.
    #[arg(long)]
    ssh_agent: bool,
    /// The git repository at the root of each --rw/--overlay grant: protect
    /// (default; hooks, config and git's pointers read-only, commits work),
    /// readonly (the whole git directory), or off (unsafe: the command can
    /// plant a hook that runs on your next git command).
    #[arg(long, value_name = "protect|readonly|off")]
    git: Option<String>,
    /// Mount DST as granted but give it no Landlock rule (stricter only; for
    /// tests proving Landlock holds on its own).
    #[arg(long, value_name = "DST", hide = true)]
    landlock_withhold: Vec<PathBuf>,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "PROGRAM [ARG]..."
    )]
    argv: Vec<String>,
}

impl RunArgs {
    fn to_policy(&self) -> PolicyFile {
        let mut p = PolicyFile {
            ro: self.ro.clone(),
            rw: self.rw.clone(),
            overlay: self.overlay.clone(),
            tmpfs: self.tmpfs.clone(),
            cwd: self.cwd.clone(),
            net: self.net.clone(),
            allow_domain: self.allow_domain.clone(),
            deny_domain: self.deny_domain.clone(),
            allow_private: self.allow_private.clone(),
            resolve: self.resolve.clone(),
            memory: self.memory.clone(),
            pids: self.pids,
            cpu: self.cpu,
            timeout: self.timeout,
            pass_env: self.pass_env.clone(),
            hostname: self.hostname.clone(),
            uid: self.uid,
            gid: self.gid,
            tmp_size: self.tmp_size.clone(),
            syscalls_allow: self.syscalls_allow.clone(),
            syscalls_deny: self.syscalls_deny.clone(),
            loopback_tcp: self.loopback_tcp.then_some(true),
            allow_no_landlock: self.allow_no_landlock.then_some(true),
            allow_reduced: self.allow_reduced.then_some(true),
            syscall_events: self.no_syscall_events.then_some(false),
            landlock_withhold: self.landlock_withhold.clone(),
            preset: self.preset.clone(),
            cache: self.cache.clone(),
            ssh_agent: self.ssh_agent.then_some(true),
            git: self.git.clone(),
            ..Default::default()
        };
        for kv in &self.env {
            p.env.push(kv.clone());
        }
        p
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("stockade: {first} (see `stockade run --help`)");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Doctor { json } => doctor(json),
        Command::Attest { pid, json } => attest::attest(pid, json),
    }
}

fn run(args: &RunArgs) -> ExitCode {
    let events_file = match args.events.as_deref().map(open_events).transpose() {
        Ok(f) => f.map(Mutex::new),
        Err(e) => {
            eprintln!("stockade: {e}");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    let events_file = Arc::new(events_file);
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut limits = stockade::Limits::default();
    let outcome = build(args).and_then(|sb| {
        limits = sb.limit_settings().clone();
        let (seen, file) = (events.clone(), events_file.clone());
        // The CLI is small and single-threaded: it does the helper's setup
        // itself.
        // Nobody reads the record without --events/--report: skip what
        // makes it (one fewer thread, no audit query per run).
        let recorded = args.events.is_some() || args.report.is_some();
        let mut child = sb
            .syscall_events(recorded && !args.no_syscall_events)
            .landlock_events(recorded)
            .on_event(move |e| {
                if let Some(f) = file.as_ref() {
                    write_event_line(f, &report::Line::new(e));
                }
                if let Ok(mut v) = seen.lock() {
                    v.push(e.clone());
                }
            })
            .spawn_in_this_process()?;
        let status = child.wait()?;
        if args.diff.is_some() || args.apply {
            workspace::review(&child, &status, args.diff.as_deref(), args.apply);
        }
        Ok(status)
    });
    if let (Err(e), Some(f)) = (&outcome, events_file.as_ref()) {
        write_event_line(f, &report::SetupFailed::new(e));
    }
    if let Some(path) = &args.report {
        let events = events.lock().map(|v| v.clone()).unwrap_or_default();
        if let Err(e) = report::write(path, &outcome, &events, &limits) {
            eprintln!("stockade: cannot write report {}: {e}", path.display());
        }
    }
    match outcome {
        Ok(status) => ExitCode::from(status.exit_code().clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("stockade: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Create (or truncate) the `--events` file before anything runs.
fn open_events(path: &std::path::Path) -> Result<std::fs::File, String> {
    std::fs::File::create(path)
        .map_err(|e| format!("cannot write events file {}: {e}", path.display()))
}

/// One JSON line, written whole (the file is shared by the threads that see
/// events).
fn write_event_line(file: &Mutex<std::fs::File>, line: &impl serde::Serialize) {
    use std::io::Write;
    let Ok(mut text) = serde_json::to_vec(line) else {
        return;
    };
    text.push(b'\n');
    if let Ok(mut f) = file.lock() {
        let _ = f.write_all(&text);
    }
}

fn build(args: &RunArgs) -> Result<stockade::Sandbox, Error> {
    let base = match &args.policy {
        Some(p) => PolicyFile::from_toml_file(p)?,
        None => PolicyFile::default(),
    };
    let policy = base.merge(args.to_policy());
    Ok(policy.to_sandbox()?.command(args.argv.iter().cloned()))
}

fn doctor(json: bool) -> ExitCode {
    let r = stockade::doctor();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    } else {
        print!("{r}");
    }
    if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
