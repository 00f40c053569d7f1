//! The TOML policy file: the same fields as the CLI's `run` options.
//!
//! ```toml
//! ro = ["/data", "/opt/tools:/tools"]
//! rw = ["/work/repo"]
//! overlay = ["/work/cache"]
//! tmpfs = ["/scratch:64M"]
//! cwd = "/work/repo"
//! net = "none"
//! timeout = 30
//! env = { CI = "1" }          # or env = ["CI=1"]
//! pass-env = ["LANG"]
//! syscalls-allow = ["ptrace"]  # on top of the default seccomp allowlist
//! syscalls-deny = ["getppid"]  # EPERM; wins over syscalls-allow
//! loopback-tcp = true          # servers on the sandbox's own loopback
//! allow-no-landlock = true     # run on hosts without Landlock
//! preset = ["python", "rust"]  # toolchains from the caller's home, read-only
//! cache = "overlay"            # their caches: ro, overlay (default), persist
//! ssh-agent = true             # bind $SSH_AUTH_SOCK at /run/ssh-agent.sock
//! git = "protect"              # or "readonly", "off"
//! allow-reduced = true         # no user namespaces here: reduced mode
//! ```
//! Unknown keys and wrong types are errors naming the key and its line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{
    parse_size, Fs, Limits, Mount, Net, ProxyPolicy, DEFAULT_OVERLAY_SIZE, DEFAULT_TMPFS_SIZE,
};
use crate::error::Error;
use crate::Sandbox;

/// A policy as written in a TOML file or assembled from CLI options. Lists add up:
/// [`PolicyFile::merge`] appends another policy's grants to this one's.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyFile {
    /// `SRC[:DST]` read-only binds.
    #[serde(default)]
    pub ro: Vec<String>,
    /// `SRC[:DST]` read-write binds.
    #[serde(default)]
    pub rw: Vec<String>,
    /// `SRC[:DST]` overlays whose writes are discarded.
    #[serde(default)]
    pub overlay: Vec<String>,
    /// `DST[:SIZE]` private tmpfs mounts.
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// Working directory inside.
    pub cwd: Option<PathBuf>,
    /// `none` or `proxy`.
    pub net: Option<String>,
    /// Domains allowed through the proxy.
    #[serde(default, alias = "allow_domain")]
    pub allow_domain: Vec<String>,
    /// Domains denied (deny wins).
    #[serde(default, alias = "deny_domain")]
    pub deny_domain: Vec<String>,
    /// CIDRs allowed names may resolve into.
    #[serde(default, alias = "allow_private")]
    pub allow_private: Vec<String>,
    /// `HOST:ADDR` static resolver entries.
    #[serde(default)]
    pub resolve: Vec<String>,
    /// Memory cap, like `512M`.
    pub memory: Option<String>,
    /// Process cap.
    pub pids: Option<u64>,
    /// CPU cap in cores.
    pub cpu: Option<f64>,
    /// Wall-clock timeout in seconds.
    pub timeout: Option<f64>,
    /// Extra environment.
    #[serde(default)]
    pub env: EnvSpec,
    /// Host variables passed through by name.
    #[serde(default, alias = "pass_env")]
    pub pass_env: Vec<String>,
    /// Hostname inside.
    pub hostname: Option<String>,
    /// User id inside.
    pub uid: Option<u32>,
    /// Group id inside.
    pub gid: Option<u32>,
    /// Size cap of the private `/tmp`, like `256M`.
    #[serde(alias = "tmp_size")]
    pub tmp_size: Option<String>,
    /// Syscalls allowed on top of the default seccomp allowlist.
    #[serde(default, alias = "syscalls_allow")]
    pub syscalls_allow: Vec<String>,
    /// Syscalls refused with `EPERM` (wins over `syscalls-allow`).
    #[serde(default, alias = "syscalls_deny")]
    pub syscalls_deny: Vec<String>,
    /// TCP on the sandbox's own loopback (Landlock leaves TCP alone).
    #[serde(alias = "loopback_tcp")]
    pub loopback_tcp: Option<bool>,
    /// Run without Landlock on a host that lacks it.
    #[serde(alias = "allow_no_landlock")]
    pub allow_no_landlock: Option<bool>,
    /// On a host without user namespaces, run in reduced mode
    /// ([`crate::Sandbox::allow_reduced`]) instead of failing.
    #[serde(default, alias = "allow_reduced")]
    pub allow_reduced: Option<bool>,
    /// Record refused syscalls as events (default true; see
    /// [`crate::Sandbox::syscall_events`]).
    #[serde(alias = "syscall_events")]
    pub syscall_events: Option<bool>,
    /// Toolchain presets (`python`, `node`, `rust`).
    #[serde(default)]
    pub preset: Vec<String>,
    /// How the presets' caches are shown: `ro`, `overlay`, `persist`.
    pub cache: Option<String>,
    /// Bind the caller's ssh-agent socket.
    #[serde(alias = "ssh_agent")]
    pub ssh_agent: Option<bool>,
    /// `protect` (default), `readonly` or `off`: see [`crate::GitMode`].
    pub git: Option<String>,
    /// Mounted paths withheld from Landlock (stricter only; for tests).
    #[serde(skip)]
    pub landlock_withhold: Vec<PathBuf>,
}

/// Environment as a table (`{ K = "V" }`) or a list (`["K=V"]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EnvSpec {
    /// `env = { K = "V" }`
    Table(BTreeMap<String, String>),
    /// `env = ["K=V"]`
    List(Vec<String>),
}

impl Default for EnvSpec {
    fn default() -> Self {
        EnvSpec::List(Vec::new())
    }
}

impl EnvSpec {
    fn pairs(&self) -> Result<Vec<(String, String)>, Error> {
        match self {
            EnvSpec::Table(t) => Ok(t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            EnvSpec::List(l) => l.iter().map(|kv| parse_env_pair(kv)).collect(),
        }
    }

    /// Append `K=V` entries.
    pub fn push(&mut self, kv: String) {
        match self {
            EnvSpec::List(l) => l.push(kv),
            EnvSpec::Table(t) => {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                t.insert(k.to_string(), v.to_string());
            }
        }
    }
}

/// Parse `K=V`.
pub fn parse_env_pair(kv: &str) -> Result<(String, String), Error> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::policy(format!(
            "invalid environment entry `{kv}`: expected K=V"
        ))),
    }
}

/// Split `SRC[:DST]`; DST defaults to SRC made absolute (so `--rw .` works).
fn split_bind(spec: &str) -> (PathBuf, PathBuf) {
    match spec.rsplit_once(':') {
        Some((src, dst)) if !src.is_empty() && !dst.is_empty() => (src.into(), dst.into()),
        _ => {
            let dst = std::path::absolute(spec).unwrap_or_else(|_| spec.into());
            (spec.into(), dst)
        }
    }
}

fn checked_dst(dst: PathBuf, opt: &str, spec: &str) -> Result<PathBuf, Error> {
    if !dst.is_absolute() {
        return Err(Error::policy(format!(
            "{opt} {spec}: destination must be an absolute path"
        )));
    }
    Ok(dst)
}

impl PolicyFile {
    /// Parse TOML text; `origin` names the file in messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message();
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(l) => Error::policy(format!("{origin}:{l}: {msg}")),
                None => Error::policy(format!("{origin}: {msg}")),
            }
        })
    }

    /// Read and parse a TOML policy file.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::policy(format!("cannot read policy {}: {e}", path.display())))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Add `other` on top of `self`: lists append, scalars set in `other` win.
    pub fn merge(mut self, other: PolicyFile) -> Self {
        self.ro.extend(other.ro);
        self.rw.extend(other.rw);
        self.overlay.extend(other.overlay);
        self.tmpfs.extend(other.tmpfs);
        self.allow_domain.extend(other.allow_domain);
        self.deny_domain.extend(other.deny_domain);
        self.allow_private.extend(other.allow_private);
        self.resolve.extend(other.resolve);
        self.pass_env.extend(other.pass_env);
        if let Ok(pairs) = other.env.pairs() {
            for (k, v) in pairs {
                self.env.push(format!("{k}={v}"));
            }
        }
        self.cwd = other.cwd.or(self.cwd);
        self.net = other.net.or(self.net);
        self.memory = other.memory.or(self.memory);
        self.pids = other.pids.or(self.pids);
        self.cpu = other.cpu.or(self.cpu);
        self.timeout = other.timeout.or(self.timeout);
        self.hostname = other.hostname.or(self.hostname);
        self.uid = other.uid.or(self.uid);
        self.gid = other.gid.or(self.gid);
        self.tmp_size = other.tmp_size.or(self.tmp_size);
        self.syscalls_allow.extend(other.syscalls_allow);
        self.syscalls_deny.extend(other.syscalls_deny);
        self.loopback_tcp = other.loopback_tcp.or(self.loopback_tcp);
        self.allow_no_landlock = other.allow_no_landlock.or(self.allow_no_landlock);
        self.allow_reduced = other.allow_reduced.or(self.allow_reduced);
        self.syscall_events = other.syscall_events.or(self.syscall_events);
        self.landlock_withhold.extend(other.landlock_withhold);
        self.preset.extend(other.preset);
        self.cache = other.cache.or(self.cache);
        self.ssh_agent = other.ssh_agent.or(self.ssh_agent);
        self.git = other.git.or(self.git);
        self
    }

    /// Build the filesystem view.
    pub fn fs(&self) -> Result<Fs, Error> {
        let mut fs = Fs::minimal();
        if let Some(s) = &self.tmp_size {
            fs = fs.tmp_size(parse_size(s)?);
        }
        for spec in &self.ro {
            let (src, dst) = split_bind(spec);
            fs = fs.mount(Mount::ReadOnly {
                src,
                dst: checked_dst(dst, "--ro", spec)?,
            });
        }
        for spec in &self.rw {
            let (src, dst) = split_bind(spec);
            fs = fs.mount(Mount::ReadWrite {
                src,
                dst: checked_dst(dst, "--rw", spec)?,
            });
        }
        for spec in &self.overlay {
            let (src, dst) = split_bind(spec);
            let dst = checked_dst(dst, "--overlay", spec)?;
            fs = fs.mount(Mount::Overlay {
                src,
                dst,
                size: DEFAULT_OVERLAY_SIZE,
            });
        }
        for spec in &self.tmpfs {
            let (dst, size) = match spec.rsplit_once(':') {
                Some((d, s)) => (PathBuf::from(d), parse_size(s)?),
                None => (PathBuf::from(spec), DEFAULT_TMPFS_SIZE),
            };
            fs = fs.mount(Mount::Tmpfs {
                dst: checked_dst(dst, "--tmpfs", spec)?,
                size,
            });
        }
        Ok(fs)
    }

    /// The network policy: `proxy` when asked for or implied by `allow-domain`.
    pub fn net(&self) -> Result<Net, Error> {
        let proxy = ProxyPolicy {
            allow: self.allow_domain.clone(),
            deny: self.deny_domain.clone(),
            allow_private: self.allow_private.clone(),
            resolve: self.resolve.clone(),
        };
        match self.net.as_deref() {
            None if proxy.allow.is_empty() => {
                if proxy != ProxyPolicy::default() {
                    return Err(Error::policy(
                        "--deny-domain, --allow-private and --resolve need --net proxy or --allow-domain",
                    ));
                }
                Ok(Net::None)
            }
            None | Some("proxy") => Ok(Net::Proxy(proxy)),
            Some("none") if proxy == ProxyPolicy::default() => Ok(Net::None),
            Some("none") => Err(Error::policy(
                "--net none conflicts with proxy options such as --allow-domain",
            )),
            Some(other) => Err(Error::policy(format!(
                "invalid --net `{other}`: expected none or proxy"
            ))),
        }
    }

    /// The resource limits.
    pub fn limits(&self) -> Result<Limits, Error> {
        let mut l = Limits::new();
        if let Some(m) = &self.memory {
            l = l.memory(parse_size(m)?);
        }
        if let Some(p) = self.pids {
            if p == 0 {
                return Err(Error::policy("--pids must be at least 1"));
            }
            l = l.pids(p);
        }
        if let Some(c) = self.cpu {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::policy(format!(
                    "invalid --cpu {c}: expected a positive number of cores"
                )));
            }
            l = l.cpu(c);
        }
        Ok(l)
    }

    /// Build a [`Sandbox`] (without a command) from this policy.
    pub fn to_sandbox(&self) -> Result<Sandbox, Error> {
        let mut sb = Sandbox::new()
            .fs(self.fs()?)
            .net(self.net()?)
            .limits(self.limits()?);
        if let Some(t) = self.timeout {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::policy(format!(
                    "invalid timeout {t}: expected seconds greater than 0"
                )));
            }
            sb = sb.timeout(Duration::from_secs_f64(t));
        }
        if let Some(c) = &self.cwd {
            sb = sb.cwd(c);
        }
        for (k, v) in self.env.pairs()? {
            sb = sb.env(k, v);
        }
        for k in &self.pass_env {
            sb = sb.pass_env(k);
        }
        if let Some(h) = &self.hostname {
            sb = sb.hostname(h);
        }
        if let Some(u) = self.uid {
            sb = sb.uid(u);
        }
        if let Some(g) = self.gid {
            sb = sb.gid(g);
        }
        // Allows first, then denies: a name in both lists is denied.
        let syscalls = crate::Syscalls::default()
            .allow(self.syscalls_allow.iter().cloned())
            .deny(self.syscalls_deny.iter().cloned());
        syscalls
            .resolve()
            .map_err(|e| Error::policy(e.to_string()))?;
        sb = sb
            .syscalls(syscalls)
            .allow_loopback_tcp(self.loopback_tcp.unwrap_or(false))
            .require_landlock(!self.allow_no_landlock.unwrap_or(false))
            .allow_reduced(self.allow_reduced.unwrap_or(false))
            .syscall_events(self.syscall_events.unwrap_or(true));
        for w in &self.landlock_withhold {
            sb = sb.landlock_withhold(w);
        }
        for name in &self.preset {
            sb = sb.preset(name.parse()?);
        }
        if let Some(mode) = &self.cache {
            if self.preset.is_empty() {
                return Err(Error::policy(
                    "--cache applies to the caches of a --preset; none is given",
                ));
            }
            sb = sb.cache(mode.parse()?);
        }
        if let Some(g) = &self.git {
            sb = sb.git(g.parse()?);
        }
        Ok(sb.ssh_agent(self.ssh_agent.unwrap_or(false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keys_parse_and_unknown_syscalls_are_refused() {
        let text = "syscalls-allow = [\"ptrace\"]\nsyscalls_deny = [\"getppid\", \"ptrace\"]\nloopback-tcp = true\nallow-no-landlock = true\n";
        let p = PolicyFile::from_toml_str(text, "p.toml").unwrap();
        assert_eq!(p.syscalls_allow, ["ptrace"]);
        assert_eq!(p.syscalls_deny, ["getppid", "ptrace"]);
        assert_eq!(
            (p.loopback_tcp, p.allow_no_landlock),
            (Some(true), Some(true))
        );
        assert!(p.to_sandbox().is_ok());
        // A name in both lists is denied (allows first, then denies).
        let resolved = crate::Syscalls::default()
            .allow(p.syscalls_allow.clone())
            .deny(p.syscalls_deny.clone())
            .resolve()
            .unwrap();
        assert_eq!(
            resolved[&libc::SYS_ptrace].1,
            crate::seccomp::Decision::Errno(libc::EPERM)
        );
        let bad = PolicyFile {
            syscalls_deny: vec!["fork2".into()],
            ..Default::default()
        };
        let err = bad.to_sandbox().unwrap_err().to_string();
        assert!(err.contains("`fork2`"), "{err}");
    }

    #[test]
    fn preset_keys_parse_and_bad_values_are_policy_errors() {
        let text = "preset = [\"python\", \"rust\"]\ncache = \"persist\"\nssh-agent = false\n";
        let p = PolicyFile::from_toml_str(text, "p.toml").unwrap();
        assert_eq!(p.preset, ["python", "rust"]);
        assert_eq!(p.cache.as_deref(), Some("persist"));
        assert!(p.to_sandbox().is_ok());
        let merged = p.merge(PolicyFile {
            preset: vec!["node".into()],
            cache: Some("ro".into()),
            ..Default::default()
        });
        assert_eq!(merged.preset, ["python", "rust", "node"]);
        assert_eq!(merged.cache.as_deref(), Some("ro"));
        for (bad, names) in [
            (r#"preset = ["ruby"]"#, "python, node, rust"),
            (
                "preset = [\"node\"]\ncache = \"rw\"",
                "ro, overlay or persist",
            ),
            (r#"cache = "ro""#, "--preset"),
        ] {
            let p = PolicyFile::from_toml_str(bad, "p.toml").unwrap();
            let err = p.to_sandbox().unwrap_err();
            assert!(matches!(err, Error::Policy(_)), "{err:?}");
            assert!(err.to_string().contains(names), "{err}");
        }
    }

    #[test]
    fn allow_reduced_parses_and_merges() {
        for text in ["allow-reduced = true\n", "allow_reduced = true\n"] {
            let p = PolicyFile::from_toml_str(text, "p.toml").unwrap();
            assert_eq!(p.allow_reduced, Some(true));
        }
        let off = PolicyFile::from_toml_str("", "p.toml").unwrap();
        assert_eq!(off.allow_reduced, None);
        let cli = PolicyFile {
            allow_reduced: Some(true),
            ..Default::default()
        };
        assert_eq!(off.clone().merge(cli).allow_reduced, Some(true));
        let err = PolicyFile::from_toml_str("allow-reduced = \"yes\"\n", "p.toml").unwrap_err();
        assert!(err.to_string().contains("p.toml:1"), "{err}");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = PolicyFile::from_toml_str("ro = [\"/usr\"]\nbogus = 1\n", "p.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p.toml:2"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let err = PolicyFile::from_toml_str("cwd = \"/x\"\n\ntimeout = \"soon\"\n", "p.toml")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p.toml:3"), "{msg}");
    }

    #[test]
    fn merge_appends_lists_and_overrides_scalars() {
        let a = PolicyFile::from_toml_str("ro=[\"/a\"]\ntimeout=5\nenv={X=\"1\"}", "a").unwrap();
        let b = PolicyFile {
            ro: vec!["/b".into()],
            timeout: Some(7.0),
            ..Default::default()
        };
        let m = a.merge(b);
        assert_eq!(m.ro, vec!["/a".to_string(), "/b".to_string()]);
        assert_eq!(m.timeout, Some(7.0));
        assert_eq!(
            m.env.pairs().unwrap(),
            vec![("X".to_string(), "1".to_string())]
        );
    }

    #[test]
    fn bind_specs_split_and_relative_dst_is_refused() {
        let p = PolicyFile {
            ro: vec!["/a:/b".into(), "/c".into()],
            ..Default::default()
        };
        let fs = p.fs().unwrap();
        assert_eq!(
            fs.mounts()[0],
            Mount::ReadOnly {
                src: "/a".into(),
                dst: "/b".into()
            }
        );
        assert_eq!(
            fs.mounts()[1],
            Mount::ReadOnly {
                src: "/c".into(),
                dst: "/c".into()
            }
        );
        let p = PolicyFile {
            rw: vec!["rel".into()],
            ..Default::default()
        };
        assert!(p.fs().unwrap().mounts()[0].dst().is_absolute());
        let p = PolicyFile {
            rw: vec!["/a:rel".into()],
            ..Default::default()
        };
        assert!(p.fs().is_err());
        let p = PolicyFile {
            tmpfs: vec!["/s:12Q".into()],
            ..Default::default()
        };
        assert!(p.fs().is_err());
    }

    #[test]
    fn allow_domain_implies_proxy() {
        let p = PolicyFile {
            allow_domain: vec!["x.com".into()],
            ..Default::default()
        };
        assert!(matches!(p.net().unwrap(), Net::Proxy(_)));
        let p = PolicyFile {
            net: Some("none".into()),
            ..Default::default()
        };
        assert_eq!(p.net().unwrap(), Net::None);
        let p = PolicyFile {
            net: Some("wifi".into()),
            ..Default::default()
        };
        assert!(p.net().is_err());
    }
}
