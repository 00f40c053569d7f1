//! Pure parsers for the text the kernel exposes in `/proc` and `/sys`.
//!
//! No I/O here: every function takes the file's text, so each one is unit-tested with
//! literal samples (including this project's hybrid-cgroup test machine).

use std::fmt;

/// A kernel version, compared numerically (`5.9 < 5.12`), parsed from `uname -r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    /// Parse the leading `major.minor[.patch]` of a release string such as
    /// `6.18.44-fc-v669` or `5.15.0-91-generic`; the suffix is ignored.
    pub fn parse(release: &str) -> Option<Self> {
        let numeric = release
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?;
        let mut parts = numeric
            .split('.')
            .filter(|p| !p.is_empty())
            .map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let patch = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(KernelVersion {
            major,
            minor,
            patch,
        })
    }

    /// Whether this kernel is `major.minor` or newer.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= KernelVersion {
            major,
            minor,
            patch: 0,
        }
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// One line of `/proc/self/mountinfo` (see proc(5)); only the fields the doctor
/// and the cgroup layer use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub id: u32,
    pub parent: u32,
    /// The directory of the filesystem that is mounted (`/` for a whole filesystem).
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`ro` makes the mount read-only here).
    pub mount_opts: String,
    pub fstype: String,
    /// Per-superblock options; for cgroup v1 this names the hierarchy's controllers.
    pub super_opts: String,
}

impl Mount {
    /// Whether the per-superblock options contain exactly `opt` (so `cpu` does not
    /// match `cpuset` or `cpuacct`).
    pub fn has_super_opt(&self, opt: &str) -> bool {
        self.super_opts.split(',').any(|o| o == opt)
    }

    /// Whether this mount is read-only.
    pub fn read_only(&self) -> bool {
        self.mount_opts.split(',').any(|o| o == "ro")
    }

    /// The directory of cgroup `path` (as in `/proc/self/cgroup`) under this
    /// mount, or None when the mount does not show it (its root is elsewhere,
    /// or the path climbs out of our cgroup namespace with `/..`).
    pub fn cgroup_dir(&self, path: &str) -> Option<std::path::PathBuf> {
        use std::path::{Component, Path};
        let rel = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))?
        };
        let rel = Path::new(rel.trim_start_matches('/'));
        if rel.components().any(|c| c == Component::ParentDir) {
            return None;
        }
        // `join("")` would add a trailing '/', which then shows up in reports.
        Some(if rel.as_os_str().is_empty() {
            Path::new(&self.mount_point).to_path_buf()
        } else {
            Path::new(&self.mount_point).join(rel)
        })
    }
}

/// Parse `/proc/self/mountinfo`; malformed lines are skipped.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`;
    // spaces inside paths are octal-escaped, so " - " only occurs as the separator.
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.split(' ').collect();
    if left.len() < 6 || right.len() < 3 {
        return None;
    }
    Some(Mount {
        id: left[0].parse().ok()?,
        parent: left[1].parse().ok()?,
        root: unescape_octal(left[3]),
        mount_point: unescape_octal(left[4]),
        mount_opts: left[5].to_string(),
        fstype: right[0].to_string(),
        super_opts: right[2].to_string(),
    })
}

/// Undo the kernel's `\NNN` octal escaping of space, tab, newline and backslash.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-ID:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupEntry {
    /// 0 for the cgroup v2 (unified) hierarchy.
    pub hierarchy: u32,
    /// v1 controllers bound to this hierarchy (`name=systemd` kept as is); empty for v2.
    pub controllers: Vec<String>,
    pub path: String,
}

impl CgroupEntry {
    /// The v2 line is `0::PATH`.
    pub fn is_v2(&self) -> bool {
        self.hierarchy == 0 && self.controllers.is_empty()
    }
}

/// Parse `/proc/<pid>/cgroup`; malformed lines are skipped.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<CgroupEntry> {
    text.lines()
        .filter_map(|line| {
            // The path may itself contain ':', so split at most twice.
            let mut it = line.splitn(3, ':');
            let hierarchy = it.next()?.parse().ok()?;
            let controllers = it
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            let path = it.next()?.to_string();
            Some(CgroupEntry {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// Split a comma-separated kernel list such as `/sys/kernel/security/lsm`
/// (`lockdown,capability,landlock,yama,apparmor`).
pub(crate) fn parse_comma_list(text: &str) -> Vec<String> {
    text.trim()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Split a whitespace-separated kernel list such as
/// `/proc/sys/kernel/seccomp/actions_avail` or `/proc/filesystems` lines.
pub(crate) fn parse_word_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

/// Whether `/proc/filesystems` lists `name` (lines are `[nodev]\tNAME`).
pub(crate) fn filesystems_has(text: &str, name: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().last() == Some(name))
}

/// A sysctl file's integer value (`"1\n"` -> 1).
pub(crate) fn parse_int(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A field of `/proc/self/status` (`CapEff:\t000001fffeffffff` -> `000001fffeffffff`).
pub(crate) fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Whether bit `cap` is set in a hex capability mask from `/proc/self/status`.
pub(crate) fn cap_mask_has(hex: &str, cap: u32) -> bool {
    u64::from_str_radix(hex.trim(), 16)
        .map(|m| m & (1u64 << cap) != 0)
        .unwrap_or(false)
}

/// Whether a `/proc/self/uid_map` is the initial user namespace's identity map
/// (`0 0 4294967295`): only there does root bypass the userns sysctls.
pub(crate) fn is_initial_uid_map(text: &str) -> bool {
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

#[cfg(test)]
mod tests {
    use super::super::samples::{HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP};
    use super::*;

    #[test]
    fn kernel_version_parses_release_strings() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669"),
            Some(KernelVersion {
                major: 6,
                minor: 18,
                patch: 44
            })
        );
        assert_eq!(
            KernelVersion::parse("5.15.0-91-generic"),
            Some(KernelVersion {
                major: 5,
                minor: 15,
                patch: 0
            })
        );
        assert_eq!(
            KernelVersion::parse("3.10.0-1160.el7.x86_64"),
            Some(KernelVersion {
                major: 3,
                minor: 10,
                patch: 0
            })
        );
        assert_eq!(
            KernelVersion::parse("6.1"),
            Some(KernelVersion {
                major: 6,
                minor: 1,
                patch: 0
            })
        );
        assert_eq!(
            KernelVersion::parse("6.8.0+"),
            Some(KernelVersion {
                major: 6,
                minor: 8,
                patch: 0
            })
        );
        assert_eq!(
            KernelVersion::parse("6.10-rc1"),
            Some(KernelVersion {
                major: 6,
                minor: 10,
                patch: 0
            })
        );
        assert_eq!(KernelVersion::parse("garbage"), None);
        assert_eq!(KernelVersion::parse("6"), None);
        assert_eq!(KernelVersion::parse(""), None);
    }

    #[test]
    fn kernel_version_compares_numerically() {
        let v = |s| KernelVersion::parse(s).unwrap();
        assert!(v("5.12.0").at_least(5, 12));
        assert!(v("5.12.0").at_least(5, 6));
        assert!(
            !v("5.9.16").at_least(5, 12),
            "5.9 < 5.12 numerically, not as text"
        );
        assert!(v("6.0.0").at_least(5, 12));
        assert!(!v("5.11.22").at_least(5, 12));
        assert!(v("5.6.0").at_least(5, 6));
        assert!(!v("4.19.300").at_least(5, 6));
        assert!(v("5.10.1") < v("5.10.2"));
        assert_eq!(v("6.18.44-fc").to_string(), "6.18.44");
    }

    #[test]
    fn mountinfo_parses_hybrid_sample() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(m.len(), 20);
        assert_eq!(
            m[0],
            Mount {
                id: 22,
                parent: 27,
                root: "/".into(),
                mount_point: "/proc".into(),
                mount_opts: "rw,relatime".into(),
                fstype: "proc".into(),
                super_opts: "rw".into(),
            }
        );
        let cpu = m
            .iter()
            .find(|m| m.mount_point == "/sys/fs/cgroup/cpu")
            .unwrap();
        assert_eq!(
            (cpu.fstype.as_str(), cpu.super_opts.as_str()),
            ("cgroup", "rw,cpu")
        );
        assert!(cpu.has_super_opt("cpu"));
        let cpuset = m
            .iter()
            .find(|m| m.mount_point == "/sys/fs/cgroup/cpuset")
            .unwrap();
        assert!(!cpuset.has_super_opt("cpu"), "cpu must not match cpuset");
        let unified = m.iter().find(|m| m.fstype == "cgroup2").unwrap();
        assert_eq!(
            (unified.id, unified.parent, unified.mount_point.as_str()),
            (41, 31, "/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn mountinfo_handles_optional_fields_and_escapes() {
        let text = "\
36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue
1254 1233 0:64 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw,nsdelegate
not a mountinfo line
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (
                m[0].root.as_str(),
                m[0].mount_point.as_str(),
                m[0].fstype.as_str()
            ),
            ("/mnt1", "/mnt two", "ext3")
        );
        assert_eq!(m[0].super_opts, "rw,errors=continue");
        assert_eq!(
            (m[1].root.as_str(), m[1].fstype.as_str()),
            ("/docker/abc", "cgroup2")
        );
        assert_eq!(unescape_octal("a\\134b\\011c\\0"), "a\\b\tc\\0");
    }

    #[test]
    fn proc_cgroup_parses_hybrid_sample() {
        let c = parse_proc_cgroup(HYBRID_PROC_CGROUP);
        assert_eq!(c.len(), 10);
        assert_eq!(
            c[5],
            CgroupEntry {
                hierarchy: 4,
                controllers: vec!["memory".into()],
                path: "/process_api/f9256aba096644396ad750cb33e26f14".into(),
            }
        );
        assert_eq!(c[0].controllers, vec!["name=systemd".to_string()]);
        assert!(!c[0].is_v2());
        assert!(c[9].is_v2());
        assert_eq!(c[9].path, "/");
    }

    #[test]
    fn proc_cgroup_parses_pure_v2_and_combined_v1() {
        let c = parse_proc_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
        assert_eq!(c.len(), 1);
        assert!(c[0].is_v2());
        assert_eq!(c[0].path, "/user.slice/user-1000.slice/session-2.scope");

        let c = parse_proc_cgroup("4:cpu,cpuacct:/a:b\n12:pids:/x\n");
        assert_eq!(
            c[0].controllers,
            vec!["cpu".to_string(), "cpuacct".to_string()]
        );
        assert_eq!(c[0].path, "/a:b", "a ':' in the path is kept");
        assert_eq!(c[1].hierarchy, 12);
    }

    #[test]
    fn lsm_and_word_lists() {
        assert_eq!(
            parse_comma_list("lockdown,capability,landlock,yama,apparmor\n"),
            ["lockdown", "capability", "landlock", "yama", "apparmor"]
        );
        assert!(!parse_comma_list("capability,selinux").contains(&"landlock".to_string()));
        assert!(parse_comma_list("").is_empty());
        assert_eq!(
            parse_word_list("kill_process kill_thread trap errno user_notif trace log allow\n"),
            [
                "kill_process",
                "kill_thread",
                "trap",
                "errno",
                "user_notif",
                "trace",
                "log",
                "allow"
            ]
        );
    }

    #[test]
    fn filesystems_lookup() {
        let text = "nodev\tsysfs\nnodev\tproc\n\text4\nnodev\toverlay\nnodev\tcgroup2\n";
        assert!(filesystems_has(text, "overlay"));
        assert!(filesystems_has(text, "ext4"));
        assert!(
            !filesystems_has(text, "cgroup"),
            "cgroup must not match cgroup2"
        );
        assert!(!filesystems_has(text, "btrfs"));
    }

    #[test]
    fn status_and_caps() {
        let status = "Name:\tcat\nUid:\t0\t0\t0\t0\nCapEff:\t000001fffeffffff\nNoNewPrivs:\t0\nSeccomp:\t2\n";
        assert_eq!(status_field(status, "CapEff"), Some("000001fffeffffff"));
        assert_eq!(status_field(status, "Seccomp"), Some("2"));
        assert_eq!(status_field(status, "Cap"), None);
        assert!(
            cap_mask_has("000001fffeffffff", 21),
            "CAP_SYS_ADMIN is bit 21"
        );
        assert!(
            !cap_mask_has("00000000a80425fb", 21),
            "docker's default set lacks CAP_SYS_ADMIN"
        );
        assert!(!cap_mask_has("0000000000000000", 21));
        assert_eq!(parse_int(" 96365\n"), Some(96365));
        assert_eq!(parse_int("x"), None);
    }

    #[test]
    fn uid_map_initial_namespace() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map("0 100000 65536\n"));
        assert!(!is_initial_uid_map(""));
    }
}
