//! The exact host fixes, shared by `doctor`'s checks and the setup errors of a
//! run (see `diagnose`), so both always print the same commands.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where the AppArmor profile for the stockade binary goes.
pub(crate) const APPARMOR_PROFILE_PATH: &str = "/etc/apparmor.d/stockade-init";

/// The profile's name (also the name of the shipped file `packaging/apparmor/stockade-init`).
pub(crate) const APPARMOR_PROFILE_NAME: &str = "stockade-init";

/// The shipped seccomp profile for containers, relative to the repository root.
pub(crate) const SECCOMP_PROFILE: &str = "examples/kubernetes/seccomp/stockade-worker.json";

/// A `sysctl` command plus how to persist it.
pub(crate) fn sysctl(key: &str, value: &str) -> String {
    format!(
        "`sudo sysctl -w {key}={value}` (persist: `echo {key}={value} | sudo tee -a /etc/sysctl.d/60-stockade.conf`)"
    )
}

/// The binary an AppArmor profile must name, and whether naming it is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileTarget {
    /// The path the profile attaches to (symlinks resolved: AppArmor matches the real path).
    pub path: String,
    /// Why `path` must not be named as it is (a user could swap the binary, or the
    /// path cannot be written in a profile), with the path to install it at instead.
    pub move_first: Option<String>,
}

/// Where to put the binary when its current path is unfit for a profile.
const INSTALL_DIR: &str = "/usr/local/bin";

impl ProfileTarget {
    /// Inspect the binary at `path` (the one that creates the namespaces).
    pub(crate) fn inspect(path: &Path) -> Self {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let shown = real.display().to_string();
        let problem = if !plain_path(&shown) {
            Some("its path has characters an AppArmor attachment cannot take verbatim")
        } else if !root_controlled(&real) {
            Some("it, or a directory above it, can be changed by a non-root user, so a profile naming it would grant user namespaces to whatever is put there")
        } else {
            None
        };
        Self::with_problem(&shown, problem)
    }

    /// `path` as given, with an optional reason to move it first (pure, for tests).
    pub(crate) fn with_problem(path: &str, problem: Option<&str>) -> Self {
        let Some(why) = problem else {
            return ProfileTarget {
                path: path.into(),
                move_first: None,
            };
        };
        let name = Path::new(path)
            .file_name()
            .map_or("stockade".into(), |n| n.to_string_lossy().into_owned());
        let name = if plain_path(&format!("/{name}")) {
            name
        } else {
            "stockade".into()
        };
        let dest = format!("{INSTALL_DIR}/{name}");
        ProfileTarget {
            path: dest.clone(),
            move_first: Some(format!(
                "{path} is not fit for a profile ({why}): first `sudo install -m 0755 '{path}' {dest}` and use that copy \
                 (the library: STOCKADE_INIT={dest})"
            )),
        }
    }
}

/// Only characters an AppArmor attachment and a single-quoted shell word take as they are.
fn plain_path(p: &str) -> bool {
    p.starts_with('/')
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b))
}

/// The file and every directory above it are owned by root and writable by nobody else.
fn root_controlled(real: &Path) -> bool {
    real.ancestors()
        .all(|p| std::fs::metadata(p).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0))
}

/// The lines of the AppArmor profile granting `userns` to `target` (an AppArmor 4.0
/// attachment: a path or a glob).
pub(crate) fn apparmor_profile_lines(target: &str) -> [String; 5] {
    [
        "abi <abi/4.0>,".into(),
        "include <tunables/global>".into(),
        format!("profile {APPARMOR_PROFILE_NAME} {target} flags=(unconfined) {{"),
        "  userns,".into(),
        "}".into(),
    ]
}

/// One shell line that writes the profile for `target` and loads it.
pub(crate) fn apparmor_install_command(target: &str) -> String {
    let words: Vec<String> = apparmor_profile_lines(target)
        .iter()
        .map(|l| format!("'{l}'"))
        .collect();
    format!(
        "printf '%s\\n' {} | sudo tee {APPARMOR_PROFILE_PATH} >/dev/null && sudo apparmor_parser -r {APPARMOR_PROFILE_PATH}",
        words.join(" ")
    )
}

/// The fix for Ubuntu's restriction, in one line (for a setup error).
pub(crate) fn apparmor_one_line(t: &ProfileTarget) -> String {
    let first = t
        .move_first
        .as_deref()
        .map_or(String::new(), |m| format!("{m}; then "));
    format!(
        "{first}install an AppArmor profile that lets {} create user namespaces: `{}` (or lift the restriction for \
         every program, weaker: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`)",
        t.path,
        apparmor_install_command(&t.path)
    )
}

/// The same fix over several lines (for `doctor`).
pub(crate) fn apparmor_lines(t: &ProfileTarget) -> String {
    let mut s = String::new();
    if let Some(m) = &t.move_first {
        s.push_str(m);
        s.push('\n');
    }
    format!(
        "{s}install an AppArmor profile that lets {path} create user namespaces \
         (packaging/apparmor/stockade-init covers /usr/bin and /usr/local/bin; this one names the binary in use):\n\
         {cmd}\n\
         or lift the restriction for every program (weaker): {sysctl}",
        path = t.path,
        cmd = apparmor_install_command(&t.path),
        sysctl = sysctl("kernel.apparmor_restrict_unprivileged_userns", "0"),
    )
}

/// A container's seccomp profile blocks namespace creation.
pub(crate) fn container_seccomp() -> String {
    format!(
        "give the container a seccomp profile that allows clone, clone3 and unshare with namespace flags, setns, mount, \
         umount2 and pivot_root ({SECCOMP_PROFILE} in the stockade repository): Docker/Podman \
         `--security-opt seccomp=stockade-worker.json` (or `--security-opt seccomp=unconfined`), Kubernetes \
         `securityContext.seccompProfile: {{type: Localhost, localhostProfile: stockade-worker.json}}`; \
         neither --privileged nor CAP_SYS_ADMIN is needed"
    )
}

/// `/proc` is masked or read-only, as in a container.
pub(crate) fn container_proc() -> String {
    "give the sandbox an unmasked, writable /proc: Docker `--security-opt systempaths=unconfined`, Podman \
     `--security-opt unmask=ALL`, Kubernetes `securityContext.procMount: Unmasked` (needs `hostUsers: false`); \
     outside a container, unmount what covers /proc (`sudo umount /proc/sys`) or `sudo mount -o remount,rw /proc`"
        .into()
}

/// A container runtime's AppArmor profile denies mounts.
pub(crate) fn container_apparmor() -> String {
    "run unconfined (Docker/Podman `--security-opt apparmor=unconfined`, Kubernetes \
     `securityContext.appArmorProfile.type: Unconfined`) or use a profile that allows mount, umount, pivot_root and userns"
        .into()
}

/// Landlock is hidden or refused by a seccomp filter around this process.
pub(crate) fn landlock_seccomp() -> String {
    format!(
        "allow landlock_create_ruleset, landlock_add_rule and landlock_restrict_self in the container's seccomp profile \
         ({SECCOMP_PROFILE} does){}",
        without_landlock()
    )
}

/// The opt-out every Landlock remedy ends with.
pub(crate) fn without_landlock() -> &'static str {
    "; or accept running without Landlock (CLI --allow-no-landlock, Rust Sandbox::require_landlock(false)): \
     the other layers still apply"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_command_writes_the_profile_and_loads_it() {
        assert_eq!(
            apparmor_install_command("/usr/local/bin/stockade"),
            "printf '%s\\n' 'abi <abi/4.0>,' 'include <tunables/global>' \
             'profile stockade-init /usr/local/bin/stockade flags=(unconfined) {' '  userns,' '}' \
             | sudo tee /etc/apparmor.d/stockade-init >/dev/null && sudo apparmor_parser -r /etc/apparmor.d/stockade-init"
        );
    }

    #[test]
    fn install_command_renders_the_profile_in_sh() {
        let cmd = apparmor_install_command("/usr/local/bin/stockade");
        let (printf, rest) = cmd.split_once(" | ").unwrap();
        assert_eq!(
            rest,
            "sudo tee /etc/apparmor.d/stockade-init >/dev/null && sudo apparmor_parser -r /etc/apparmor.d/stockade-init"
        );
        let out = std::process::Command::new("sh")
            .args(["-c", printf])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "abi <abi/4.0>,\n\
             include <tunables/global>\n\
             profile stockade-init /usr/local/bin/stockade flags=(unconfined) {\n\
             \x20 userns,\n\
             }\n"
        );
    }

    #[test]
    fn a_user_writable_binary_is_installed_first() {
        let t = ProfileTarget::with_problem("/home/ann/.cargo/bin/stockade", Some("writable"));
        assert_eq!(t.path, "/usr/local/bin/stockade");
        let line = apparmor_one_line(&t);
        assert!(
            line.starts_with(
                "/home/ann/.cargo/bin/stockade is not fit for a profile (writable): first \
                 `sudo install -m 0755 '/home/ann/.cargo/bin/stockade' /usr/local/bin/stockade`"
            ),
            "{line}"
        );
        assert!(
            line.contains("profile stockade-init /usr/local/bin/stockade flags"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let lines = apparmor_lines(&t);
        assert_eq!(lines.lines().count(), 4, "{lines}");
    }

    #[test]
    fn paths_are_checked_for_ownership_and_characters() {
        // The test binary lives under target/, usually root-owned in CI but not always:
        // check the decision on paths whose owners are known.
        assert!(root_controlled(Path::new("/usr/bin")));
        assert!(
            !root_controlled(Path::new("/tmp")),
            "/tmp is world-writable"
        );
        assert!(plain_path("/usr/local/bin/stockade-init"));
        assert!(!plain_path("/opt/my tools/stockade"));
        assert!(!plain_path("relative/stockade"));
        let t = ProfileTarget::inspect(Path::new("/tmp"));
        assert_eq!(t.path, "/usr/local/bin/tmp");
        assert!(t
            .move_first
            .unwrap()
            .contains("can be changed by a non-root user"));
    }
}
