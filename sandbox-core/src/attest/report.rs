//! The attestation report: one [`Check`] per [`Property`], each `pass`, `fail`
//! or `unknown` with the kernel values it was decided on.

use std::fmt;

use serde::Serialize;

/// A property of the containment, checked from the host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Property {
    /// Every process is in a user namespace other than the attesting process's.
    UserNs,
    /// ... a pid namespace other than ours.
    PidNs,
    /// ... a network namespace other than ours.
    NetNs,
    /// ... a mount namespace other than ours.
    MntNs,
    /// ... a UTS namespace other than ours.
    UtsNs,
    /// ... an IPC namespace other than ours.
    IpcNs,
    /// ... a cgroup namespace other than ours.
    CgroupNs,
    /// ... a time namespace other than ours.
    TimeNs,
    /// The network namespace has only `lo`, and no route leaves through anything else.
    LoopbackOnly,
    /// Every command process runs in seccomp filter mode with the sandbox's filter.
    Seccomp,
    /// Every command process has `no_new_privs`.
    NoNewPrivs,
    /// Every process has all five capability sets empty.
    Capabilities,
    /// The uid and gid maps map exactly one id each, to the expected host id.
    IdMaps,
    /// The sandbox's cgroup and its limits (or that it has none).
    CgroupLimits,
    /// The Landlock domain (not exposed by the kernel: always `unknown`).
    Landlock,
    /// No process of the sandbox is outside its pid namespace.
    PidNsContainment,
}

impl Property {
    /// Every property, in report order.
    pub const ALL: [Property; 16] = [
        Property::UserNs,
        Property::PidNs,
        Property::NetNs,
        Property::MntNs,
        Property::UtsNs,
        Property::IpcNs,
        Property::CgroupNs,
        Property::TimeNs,
        Property::LoopbackOnly,
        Property::Seccomp,
        Property::NoNewPrivs,
        Property::Capabilities,
        Property::IdMaps,
        Property::CgroupLimits,
        Property::Landlock,
        Property::PidNsContainment,
    ];

    /// Stable name, as in the table and the JSON (`net-ns`, `seccomp`...).
    pub fn name(self) -> &'static str {
        match self {
            Property::UserNs => "user-ns",
            Property::PidNs => "pid-ns",
            Property::NetNs => "net-ns",
            Property::MntNs => "mnt-ns",
            Property::UtsNs => "uts-ns",
            Property::IpcNs => "ipc-ns",
            Property::CgroupNs => "cgroup-ns",
            Property::TimeNs => "time-ns",
            Property::LoopbackOnly => "loopback-only",
            Property::Seccomp => "seccomp",
            Property::NoNewPrivs => "no-new-privs",
            Property::Capabilities => "capabilities",
            Property::IdMaps => "id-maps",
            Property::CgroupLimits => "cgroup-limits",
            Property::Landlock => "landlock",
            Property::PidNsContainment => "pid-ns-containment",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The kernel state shows the property holds.
    Pass,
    /// Neither shown nor refuted (not exposed by the kernel, not readable by this
    /// user, or nothing to check); the evidence says why.
    Unknown,
    /// Does not hold, as expected: a layer reduced mode runs without
    /// (`crate::reduced`). Not a failure; listed in [`Report::missing`].
    Missing,
    /// The kernel state shows the property does not hold.
    Fail,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Outcome::Pass => "pass",
            Outcome::Unknown => "unknown",
            Outcome::Missing => "missing",
            Outcome::Fail => "FAIL",
        })
    }
}

/// One property's result and what it was decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The property.
    pub property: Property,
    /// Its result.
    pub result: Outcome,
    /// The kernel values read (failures first), one finding per entry.
    pub evidence: Vec<String>,
}

/// What a process is to the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The sandbox's init (PID 1 inside; the supervisor, not under the
    /// sandbox's seccomp filter by design). In reduced mode: its supervisor,
    /// in our own pid namespace.
    Init,
    /// Any other process: a command or something it started.
    Command,
}

/// A process the attestation covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    /// Host pid.
    pub pid: u32,
    /// Its role.
    pub role: Role,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// How it was found: `init`, `descendant`, `cgroup` (listed in the sandbox's
    /// `cgroup.procs`), `pid-ns` (in the sandbox's pid namespace) or `asked`.
    pub found_by: &'static str,
}

/// The attestation of one sandbox, read from the host side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The pid that was asked about.
    pub pid: u32,
    /// Host pid of the sandbox's init (None: the process is not in a pid
    /// namespace of its own, so there is no sandbox init). In reduced mode:
    /// the supervisor's pid.
    pub init: Option<u32>,
    /// `full`, or `reduced` when the sandbox is a reduced-mode supervisor's
    /// tree (no namespaces: see `crate::reduced`).
    pub mode: crate::reduced::Mode,
    /// The layers found missing, as reduced mode expects (the checks with
    /// [`Outcome::Missing`], plus `pivot-root` with `mnt-ns`); empty in
    /// full mode.
    pub missing: Vec<String>,
    /// Every process checked (those that exited while being read are left out).
    pub processes: Vec<Process>,
    /// Remarks on the whole attestation (an idle sandbox, how ids were judged).
    pub notes: Vec<String>,
    /// One check per [`Property`], in [`Property::ALL`] order.
    pub checks: Vec<Check>,
}

impl Report {
    /// The check of `property`.
    pub fn check(&self, property: Property) -> Option<&Check> {
        self.checks.iter().find(|c| c.property == property)
    }

    /// The properties that failed.
    pub fn failed(&self) -> Vec<Property> {
        self.with(Outcome::Fail)
    }

    /// The properties with `outcome`.
    pub fn with(&self, outcome: Outcome) -> Vec<Property> {
        self.checks
            .iter()
            .filter(|c| c.result == outcome)
            .map(|c| c.property)
            .collect()
    }

    /// True when no property failed (`unknown` ones do not count as failures).
    pub fn passed(&self) -> bool {
        self.failed().is_empty()
    }
}

impl fmt::Display for Report {
    /// A table `property  result  evidence`, continuation evidence lines aligned
    /// under the first, then a one-line summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let commands = self
            .processes
            .iter()
            .filter(|p| p.role == Role::Command)
            .count();
        match self.init {
            Some(sup) if self.mode == crate::reduced::Mode::Reduced => writeln!(
                f,
                "stockade attest: pid {} -> reduced-mode supervisor {sup} and {commands} more process(es)",
                self.pid
            )?,
            Some(init) => writeln!(
                f,
                "stockade attest: pid {} -> sandbox init {init} and {commands} more process(es)",
                self.pid
            )?,
            None => writeln!(
                f,
                "stockade attest: pid {} -> no sandbox init, {} process(es)",
                self.pid,
                self.processes.len()
            )?,
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        let width = Property::ALL
            .iter()
            .map(|p| p.name().len())
            .max()
            .unwrap_or(0);
        writeln!(f, "{:<width$}  {:<7}  evidence", "property", "result")?;
        let indent = " ".repeat(width + 2 + 7 + 2);
        for c in &self.checks {
            let mut lines = c.evidence.iter();
            let first = lines.next().map(String::as_str).unwrap_or("");
            writeln!(f, "{:<width$}  {:<7}  {first}", c.property, c.result)?;
            for line in lines {
                writeln!(f, "{indent}{line}")?;
            }
        }
        let names = |o: Outcome| -> String {
            self.with(o)
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unknown = names(Outcome::Unknown);
        let unknown = if unknown.is_empty() {
            String::new()
        } else {
            format!(" (unknown: {unknown})")
        };
        let missing = if self.missing.is_empty() {
            String::new()
        } else {
            format!(" (reduced mode, missing: {})", self.missing.join(", "))
        };
        if self.passed() {
            writeln!(f, "result: pass{missing}{unknown}")
        } else {
            writeln!(
                f,
                "result: FAIL: {}{missing}{unknown}",
                names(Outcome::Fail)
            )
        }
    }
}
