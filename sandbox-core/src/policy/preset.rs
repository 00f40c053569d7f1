//! Toolchain presets: the caller's own toolchains (pyenv, `~/.local`, nvm,
//! rustup, cargo) shown read-only, with their download caches.
//!
//! A preset is a list of grants and variables computed from what exists in
//! the caller's home, nothing more: it never exposes the home itself, and
//! never anything that holds credentials (`~/.ssh`, `~/.aws`, `~/.config`,
//! `~/.gitconfig`, `~/.npmrc`, `~/.pypirc`, `~/.cargo/credentials.toml`,
//! `~/.cargo/config.toml`).
//!
//! Decisions, and why:
//!
//! - **Host paths.** Toolchain directories appear inside at the same path as on
//!   the host (`/home/alice/.pyenv`): pyenv shims, nvm, pipx launchers and
//!   venvs all carry absolute paths. The variables that locate them
//!   (`PYENV_ROOT`, `NVM_DIR`, `RUSTUP_HOME`, `CARGO_HOME`, ...) point there.
//! - **`HOME` stays `/tmp`.** Dotfiles a tool writes go to the private `/tmp`;
//!   nothing of the real home other than the grants below is visible.
//! - **Caches** ([`CacheMode`]): read-only, an overlay discarded at exit (the
//!   default: a poisoned cache never reaches the host), or persisted. A
//!   missing cache is a fresh tmpfs in overlay mode, created on the host in
//!   persist mode, and skipped in read-only mode (the tool then uses its
//!   default under `/tmp`).
//! - **Missing toolchains are skipped silently**: a preset is a convenience,
//!   not a requirement.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{Mount, DEFAULT_OVERLAY_SIZE};
use crate::error::Error;

/// A toolchain family whose per-user installation a sandbox may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// pyenv (`~/.pyenv`), `pip --user` and pipx (`~/.local`); cache
    /// `~/.cache/pip`.
    Python,
    /// nvm (`~/.nvm`); cache `~/.npm`.
    Node,
    /// rustup (`~/.rustup`) and cargo's installed binaries (`~/.cargo/bin`);
    /// caches `~/.cargo/registry` and `~/.cargo/git`.
    Rust,
}

impl Preset {
    /// Every preset, in the order they are listed to users.
    pub const ALL: [Preset; 3] = [Preset::Python, Preset::Node, Preset::Rust];

    /// The name used by `--preset` and the policy file.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Python => "python",
            Preset::Node => "node",
            Preset::Rust => "rust",
        }
    }

    fn layout(self) -> &'static Layout {
        match self {
            Preset::Python => &PYTHON,
            Preset::Node => &NODE,
            Preset::Rust => &RUST,
        }
    }
}

impl FromStr for Preset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                Error::policy(format!(
                    "unknown preset `{s}`: known presets are {}",
                    known.join(", ")
                ))
            })
    }
}

/// How a preset's caches (`~/.cache/pip`, `~/.npm`, `~/.cargo/registry`,
/// `~/.cargo/git`) are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Read-only: what is cached is used, nothing can be added.
    ReadOnly,
    /// Writable, with the writes kept in memory and discarded at exit (the
    /// default).
    #[default]
    Overlay,
    /// Read-write: writes land in the host's cache. A command can then
    /// change what later host builds read from it.
    Persist,
}

impl CacheMode {
    /// The name used by `--cache` and the policy file.
    pub fn name(self) -> &'static str {
        match self {
            CacheMode::ReadOnly => "ro",
            CacheMode::Overlay => "overlay",
            CacheMode::Persist => "persist",
        }
    }
}

impl FromStr for CacheMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        [CacheMode::ReadOnly, CacheMode::Overlay, CacheMode::Persist]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::policy(format!(
                    "invalid cache mode `{s}`: expected ro, overlay or persist"
                ))
            })
    }
}

/// Where one toolchain family lives in a home. Paths are relative to it.
struct Layout {
    /// Directories bound read-only.
    tools: &'static [&'static str],
    /// Directories put on `PATH`, in order, when they exist.
    bin: &'static [&'static str],
    /// Variables pointing at a directory, set when it exists (the first
    /// existing one wins when a name repeats).
    vars: &'static [(&'static str, &'static str)],
    /// Caches, each with the variable that points its tool at it (cargo
    /// finds its caches under `CARGO_HOME`).
    caches: &'static [(&'static str, Option<&'static str>)],
    /// The caller's variables that choose a version, passed through if set.
    pass: &'static [&'static str],
}

const PYTHON: Layout = Layout {
    // `~/.local/lib/python*` are added by `expand` (one per version).
    tools: &[".pyenv", ".local/bin", ".local/share/pipx", ".local/pipx"],
    bin: &[".pyenv/shims", ".pyenv/bin", ".local/bin"],
    vars: &[
        ("PYENV_ROOT", ".pyenv"),
        // The user site (`pip install --user`) is found through it.
        ("PYTHONUSERBASE", ".local"),
        ("PIPX_HOME", ".local/share/pipx"),
        ("PIPX_HOME", ".local/pipx"),
        ("PIPX_BIN_DIR", ".local/bin"),
    ],
    caches: &[(".cache/pip", Some("PIP_CACHE_DIR"))],
    pass: &["PYENV_VERSION"],
};

const NODE: Layout = Layout {
    tools: &[".nvm"],
    // The node version's own `bin` is chosen by `nvm_bin`.
    bin: &[],
    vars: &[("NVM_DIR", ".nvm")],
    caches: &[(".npm", Some("npm_config_cache"))],
    pass: &[],
};

const RUST: Layout = Layout {
    tools: &[".rustup", ".cargo/bin"],
    bin: &[".cargo/bin"],
    vars: &[("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")],
    caches: &[(".cargo/registry", None), (".cargo/git", None)],
    pass: &["RUSTUP_TOOLCHAIN"],
};

/// What presets add to a sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Expansion {
    /// Grants at their host paths.
    pub mounts: Vec<Mount>,
    /// Variables (`PATH` is not among them; see `path`).
    pub env: Vec<(String, String)>,
    /// Directories to put on `PATH` before the system ones.
    pub path: Vec<PathBuf>,
}

/// The caller's side of an expansion.
pub(crate) struct Caller<'a> {
    /// The home whose toolchains are shown.
    pub home: &'a Path,
    /// The caller's `PATH`: its entries inside a shown toolchain (an `nvm
    /// use`, a pyenv shim dir) keep their place first.
    pub path: Option<&'a str>,
    /// The caller's value of a variable.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// Create a missing cache on the host in persist mode (a spawn does; a
    /// mere validation does not, and skips it).
    pub create_caches: bool,
}

/// The grants and variables of `presets` for `caller`. Creates missing
/// caches on the host only in persist mode with `create_caches`.
pub(crate) fn expand(
    presets: &[Preset],
    cache: CacheMode,
    caller: &Caller<'_>,
) -> Result<Expansion, Error> {
    let home = caller.home;
    let mut x = Expansion::default();
    let mut tools: Vec<PathBuf> = Vec::new();
    let mut bins: Vec<PathBuf> = Vec::new();
    let mut seen = Vec::new();
    for &preset in presets {
        if seen.contains(&preset) {
            continue;
        }
        seen.push(preset);
        let layout = preset.layout();
        let mut dirs: Vec<PathBuf> = layout.tools.iter().map(|t| home.join(t)).collect();
        if preset == Preset::Python {
            dirs.extend(python_user_sites(home));
        }
        tools.extend(dirs.into_iter().filter(|d| d.is_dir()));
        bins.extend(layout.bin.iter().map(|b| home.join(b)));
        if preset == Preset::Node {
            bins.extend(nvm_bin(&home.join(".nvm")));
        }
        for (name, rel) in layout.vars {
            let dir = home.join(rel);
            if dir.is_dir() && !x.env.iter().any(|(k, _)| k == name) {
                x.env.push((name.to_string(), path_string(&dir)));
            }
        }
        for name in layout.pass {
            if let Some(v) = (caller.var)(name) {
                x.env.push((name.to_string(), v));
            }
        }
        for (rel, var) in layout.caches {
            let dir = home.join(rel);
            let Some(mount) = cache_mount(&dir, cache, caller.create_caches)? else {
                continue;
            };
            x.mounts.push(mount);
            if let Some(var) = var {
                x.env.push((var.to_string(), path_string(&dir)));
            }
        }
    }
    let inside_tools = |p: &Path| tools.iter().any(|t| p.starts_with(t));
    let from_caller = caller
        .path
        .unwrap_or("")
        .split(':')
        .map(PathBuf::from)
        .filter(|p| inside_tools(p));
    for dir in from_caller.chain(bins) {
        if dir.is_dir() && inside_tools(&dir) && !x.path.contains(&dir) {
            x.path.push(dir);
        }
    }
    x.mounts.splice(
        0..0,
        tools.into_iter().map(|t| Mount::ReadOnly {
            src: t.clone(),
            dst: t,
        }),
    );
    Ok(x)
}

/// The grant of one cache directory, if any.
fn cache_mount(dir: &Path, mode: CacheMode, create: bool) -> Result<Option<Mount>, Error> {
    let exists = dir.is_dir();
    let (src, dst) = (dir.to_path_buf(), dir.to_path_buf());
    Ok(match mode {
        CacheMode::ReadOnly if exists => Some(Mount::ReadOnly { src, dst }),
        CacheMode::ReadOnly => None,
        CacheMode::Overlay if exists => Some(Mount::Overlay {
            src,
            dst,
            size: DEFAULT_OVERLAY_SIZE,
        }),
        CacheMode::Overlay => Some(Mount::Tmpfs {
            dst,
            size: DEFAULT_OVERLAY_SIZE,
        }),
        CacheMode::Persist if exists => Some(Mount::ReadWrite { src, dst }),
        CacheMode::Persist if create => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    Error::policy(format!(
                        "--cache persist: cannot create {}: {e}",
                        dir.display()
                    ))
                })?;
            Some(Mount::ReadWrite { src, dst })
        }
        CacheMode::Persist => None,
    })
}

/// `~/.local/lib/python3.X`: where `pip install --user` puts packages.
fn python_user_sites(home: &Path) -> Vec<PathBuf> {
    let lib = home.join(".local/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// The `bin` of the node version nvm would pick in a new shell: the default
/// alias (`20`, `v20.11.1`) matched against the installed versions, the
/// newest installed one otherwise (`lts/*`, `node`, no alias).
fn nvm_bin(nvm: &Path) -> Option<PathBuf> {
    let versions = nvm.join("versions/node");
    let mut installed: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(&versions)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((parse_version(&name)?, e.path()))
        })
        .collect();
    installed.sort();
    let alias = std::fs::read_to_string(nvm.join("alias/default")).unwrap_or_default();
    let wanted = parse_version(alias.trim());
    let pick = installed
        .iter()
        .rev()
        .find(|(v, _)| wanted.as_ref().is_some_and(|w| v.starts_with(w)))
        .or_else(|| installed.last())?;
    Some(pick.1.join("bin"))
}

/// `v20.11.1`, `20.11`, `20` -> numbers; anything else is not a version.
fn parse_version(s: &str) -> Option<Vec<u64>> {
    let s = s.strip_prefix('v').unwrap_or(s);
    s.split('.').map(|p| p.parse().ok()).collect()
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Home(PathBuf);

    impl Home {
        fn new(tag: &str) -> Home {
            let dir = std::env::temp_dir().join(format!(
                "stockade-preset-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Home(dir)
        }
        fn mk(&self, rel: &str) -> PathBuf {
            let p = self.0.join(rel);
            fs::create_dir_all(&p).unwrap();
            p
        }
        fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn expand_in(
        home: &Home,
        presets: &[Preset],
        cache: CacheMode,
        path: Option<&str>,
    ) -> Expansion {
        let caller = Caller {
            home: &home.0,
            path,
            var: &no_vars,
            create_caches: true,
        };
        expand(presets, cache, &caller).unwrap()
    }

    fn ro(p: PathBuf) -> Mount {
        Mount::ReadOnly {
            src: p.clone(),
            dst: p,
        }
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let err = "ruby".parse::<Preset>().unwrap_err();
        assert!(matches!(err, Error::Policy(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("`ruby`") && msg.contains("python, node, rust"),
            "{msg}"
        );
        assert_eq!("node".parse::<Preset>().unwrap(), Preset::Node);
        assert!("RO".parse::<CacheMode>().is_err());
        assert_eq!("persist".parse::<CacheMode>().unwrap(), CacheMode::Persist);
    }

    #[test]
    fn empty_home_adds_nothing_but_a_fresh_cache_in_overlay_mode() {
        let home = Home::new("empty");
        for p in Preset::ALL {
            let x = expand_in(&home, &[p], CacheMode::ReadOnly, None);
            assert_eq!(x, Expansion::default(), "{p:?}");
        }
        let x = expand_in(&home, &[Preset::Python], CacheMode::Overlay, None);
        assert_eq!(
            x.mounts,
            [Mount::Tmpfs {
                dst: home.0.join(".cache/pip"),
                size: DEFAULT_OVERLAY_SIZE
            }]
        );
        assert!(
            !home.0.join(".cache").exists(),
            "overlay mode writes nothing"
        );
    }

    #[test]
    fn rust_preset_binds_rustup_and_cargo_bin_never_cargo_credentials() {
        let home = Home::new("rust");
        home.mk(".rustup/toolchains");
        home.mk(".cargo/bin");
        home.mk(".cargo/registry");
        home.write(".cargo/credentials.toml", "token");
        home.write(".cargo/config.toml", "[registry]\ntoken = \"t\"\n");
        let x = expand_in(&home, &[Preset::Rust], CacheMode::Overlay, None);
        let h = &home.0;
        assert_eq!(
            x.mounts,
            [
                ro(h.join(".rustup")),
                ro(h.join(".cargo/bin")),
                Mount::Overlay {
                    src: h.join(".cargo/registry"),
                    dst: h.join(".cargo/registry"),
                    size: DEFAULT_OVERLAY_SIZE
                },
                Mount::Tmpfs {
                    dst: h.join(".cargo/git"),
                    size: DEFAULT_OVERLAY_SIZE
                },
            ]
        );
        assert_eq!(x.path, [h.join(".cargo/bin")]);
        let s = |p: &str| h.join(p).to_string_lossy().into_owned();
        assert_eq!(
            x.env,
            [
                ("RUSTUP_HOME".to_string(), s(".rustup")),
                ("CARGO_HOME".to_string(), s(".cargo")),
            ]
        );
    }

    #[test]
    fn python_preset_binds_pyenv_and_local_toolchain_parts_only() {
        let home = Home::new("python");
        home.mk(".pyenv/shims");
        home.mk(".pyenv/bin");
        home.mk(".local/bin");
        home.mk(".local/lib/python3.11/site-packages");
        home.mk(".local/share/pipx/venvs");
        home.mk(".local/share/keyrings");
        home.mk(".local/state");
        let x = expand_in(&home, &[Preset::Python], CacheMode::Persist, None);
        let h = &home.0;
        let granted: Vec<&Path> = x.mounts.iter().map(|m| m.dst()).collect();
        assert_eq!(
            granted,
            [
                h.join(".pyenv"),
                h.join(".local/bin"),
                h.join(".local/share/pipx"),
                h.join(".local/lib/python3.11"),
                h.join(".cache/pip"),
            ]
        );
        assert!(matches!(x.mounts[4], Mount::ReadWrite { .. }));
        assert!(h.join(".cache/pip").is_dir(), "persist creates the cache");
        assert_eq!(
            x.path,
            [
                h.join(".pyenv/shims"),
                h.join(".pyenv/bin"),
                h.join(".local/bin")
            ]
        );
        let names: Vec<&str> = x.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PYENV_ROOT",
                "PYTHONUSERBASE",
                "PIPX_HOME",
                "PIPX_BIN_DIR",
                "PIP_CACHE_DIR"
            ]
        );
    }

    #[test]
    fn persist_without_create_skips_a_missing_cache() {
        let home = Home::new("validate");
        let caller = Caller {
            home: &home.0,
            path: None,
            var: &no_vars,
            create_caches: false,
        };
        let x = expand(&[Preset::Node], CacheMode::Persist, &caller).unwrap();
        assert!(x.mounts.is_empty());
        assert!(!home.0.join(".npm").exists());
    }

    #[test]
    fn nvm_picks_the_callers_version_then_the_default_alias_then_the_newest() {
        let home = Home::new("nvm");
        for v in ["v18.19.0", "v20.9.0", "v20.11.1", "v22.1.0"] {
            home.mk(&format!(".nvm/versions/node/{v}/bin"));
        }
        let nvm = home.0.join(".nvm/versions/node");
        let x = expand_in(&home, &[Preset::Node], CacheMode::ReadOnly, None);
        assert_eq!(x.path, [nvm.join("v22.1.0/bin")]);
        home.write(".nvm/alias/default", "20\n");
        let x = expand_in(&home, &[Preset::Node], CacheMode::ReadOnly, None);
        assert_eq!(x.path, [nvm.join("v20.11.1/bin")]);
        let callers = format!("/usr/bin:{}", nvm.join("v18.19.0/bin").display());
        let x = expand_in(&home, &[Preset::Node], CacheMode::ReadOnly, Some(&callers));
        assert_eq!(x.path, [nvm.join("v18.19.0/bin"), nvm.join("v20.11.1/bin")]);
        assert_eq!(x.mounts, [ro(home.0.join(".nvm"))]);
    }

    #[test]
    fn callers_path_entries_outside_the_toolchains_are_not_taken() {
        let home = Home::new("path");
        home.mk(".cargo/bin");
        home.mk("bin");
        let callers = format!("{}:{}", home.0.join("bin").display(), "/opt/x");
        let x = expand_in(&home, &[Preset::Rust], CacheMode::ReadOnly, Some(&callers));
        assert_eq!(x.path, [home.0.join(".cargo/bin")]);
    }
}
