//! Filesystem containment, for root and for an unprivileged caller: host secrets stay
//! unreadable, `--ro` and system dirs stay read-only, `--rw` writes land with the right owner,
//! `--overlay` writes vanish, kernel interfaces are masked, and the default view is minimal.
//!
//! Every test pairs its denial with a positive control in the same sandbox run.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;

use common::*;

for_each_caller! {
    root_host_canaries_are_unreadable_while_granted_ro_file_is_readable,
    user_host_canaries_are_unreadable_while_granted_ro_file_is_readable
        => host_canaries_unreadable;
    root_ro_bind_and_system_dirs_reject_writes_with_erofs_and_host_bytes_unchanged,
    user_ro_bind_and_system_dirs_reject_writes_with_erofs_and_host_bytes_unchanged
        => ro_writes_fail;
    root_rw_bind_writes_land_on_host_owned_by_caller,
    user_rw_bind_writes_land_on_host_owned_by_caller
        => rw_writes_land;
    root_overlay_writes_succeed_inside_and_leave_host_bytes_xattrs_listing_unchanged,
    user_overlay_writes_succeed_inside_and_leave_host_bytes_xattrs_listing_unchanged
        => overlay_writes_vanish;
    root_kernel_interfaces_masked_while_basic_devices_work,
    user_kernel_interfaces_masked_while_basic_devices_work
        => kernel_interfaces_masked;
    root_default_view_has_no_home_root_run_var_but_has_usr,
    user_default_view_has_no_home_root_run_var_but_has_usr
        => default_view_minimal;
    root_ro_grant_nested_inside_rw_grant_stays_read_only,
    user_ro_grant_nested_inside_rw_grant_stays_read_only
        => nested_ro_inside_rw;
    root_mount_destination_under_system_dir_refused_and_host_untouched,
    user_mount_destination_under_system_dir_refused_and_host_untouched
        => dst_under_system_dir;
}

/// Case 1: A fake `~/.ssh/id_rsa`, a file in /root and a secret in an ungranted sibling dir are
/// invisible inside; a file in the granted `--ro` dir next to them is readable.
fn host_canaries_unreadable(caller: Caller) {
    let t = TestDir::new("canary");
    let granted = t.mkdir("granted");
    let granted_file = t.write("granted/visible.txt", b"granted-content\n");
    let ssh_key = t.write("home/.ssh/id_rsa", b"-----BEGIN FAKE PRIVATE KEY-----\n");
    let secret = t.write("secret/token", b"s3cr3t\n");
    let root_canary = HostFile::create(
        format!("/root/stockade-canary-{}", random_hex(6)).into(),
        b"root-canary\n",
        0o600,
    );
    let root_canary_path = root_canary.path.to_str().unwrap().to_string();

    // The canaries are real and (for the temp ones) readable by the caller outside the sandbox:
    // only the sandbox stands between the caller and them.
    assert_eq!(fs::read(&root_canary.path).unwrap(), b"root-canary\n");
    if caller == Caller::User {
        let o = std::process::Command::new(find_tool("runuser"))
            .args(["-u", TEST_USER, "--", "cat", &ssh_key, &secret])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "outside the sandbox the user can read the canaries: {o:?}"
        );
    }

    let script = Script::new()
        .probe("granted", &format!("cat {granted_file}"))
        .probe("ssh_key", &format!("cat {ssh_key}"))
        .probe("secret", &format!("cat {secret}"))
        .probe("root_canary", &format!("cat {root_canary_path}"))
        .probe("parent_listing", &format!("ls {}", t.join("")))
        .probe("home_ls", &format!("ls {}", t.join("home")))
        .build();
    let out = sh(
        caller,
        &[
            "--ro",
            &granted,
            "--env",
            &format!("HOME={}", t.join("home")),
        ],
        &script,
    );
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("granted", "granted-content");
    p.fails_with("ssh_key", "No such file or directory");
    p.fails_with("secret", "No such file or directory");
    p.fails_with("root_canary", "No such file or directory");
    p.fails_with("home_ls", "No such file or directory");
    // Only the granted dir's name shows in its parent; the ungranted siblings do not leak.
    p.ok("parent_listing", "granted");
}

/// Case 2: Writes into a `--ro` bind fail with EROFS and leave the host bytes alone; so do writes to
/// /usr, /etc and /. The granted file is readable in the same run.
fn ro_writes_fail(caller: Caller) {
    let t = TestDir::new("ro");
    let ro = t.mkdir("ro");
    let f = t.write("ro/data.txt", b"original bytes\n");
    // The caller owns the dir and file, so on the host it could write them: only the read-only
    // bind stands in the way (otherwise the user case would pass on plain permissions).
    caller.own(Path::new(&ro));
    let before = fs::read(&f).unwrap();
    let env_before = fs::read("/usr/bin/env").unwrap();
    let listing_before = listing(Path::new(&ro));

    let script = Script::new()
        .probe("read", &format!("cat {f}"))
        .probe("overwrite", &format!("echo pwned > {f}"))
        .probe("append", &format!("echo pwned >> {f}"))
        .probe("create", &format!("echo pwned > {ro}/new.txt"))
        .probe("remove", &format!("rm -f {f}"))
        .probe("usr_create", "echo pwned > /usr/stockade-x")
        .probe("etc_create", "echo pwned > /etc/stockade-x")
        .probe("root_create", "echo pwned > /stockade-x")
        .probe("root_mkdir", "mkdir /stockade-d")
        // Opens /usr/bin/env for append and writes nothing, so a broken sandbox cannot harm it.
        .probe("usr_existing", "printf '' >> /usr/bin/env")
        .probe("read_after", &format!("cat {f}"))
        .build();
    let out = sh(caller, &["--ro", &ro], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("read", "original bytes");
    p.fails_with("overwrite", "Read-only file system");
    p.fails_with("append", "Read-only file system");
    p.fails_with("create", "Read-only file system");
    p.fails_with("remove", "Read-only file system");
    p.fails_with("usr_create", "Read-only file system");
    p.fails_with("etc_create", "Read-only file system");
    p.fails_with("root_create", "Read-only file system");
    p.fails_with("root_mkdir", "Read-only file system");
    // Opening an existing root-owned file: the permission check may come before the read-only
    // check (the caller has no capabilities inside), so either errno proves the refusal.
    p.fails_with_one_of(
        "usr_existing",
        &["Read-only file system", "Permission denied"],
    );
    p.ok("read_after", "original bytes");

    assert_eq!(
        fs::read(&f).unwrap(),
        before,
        "host bytes of the --ro file changed"
    );
    assert_eq!(
        listing(Path::new(&ro)),
        listing_before,
        "host listing of the --ro dir changed"
    );
    assert_eq!(
        fs::read("/usr/bin/env").unwrap(),
        env_before,
        "/usr/bin/env changed"
    );
    for p in [
        "/usr/stockade-x",
        "/etc/stockade-x",
        "/stockade-x",
        "/stockade-d",
    ] {
        assert!(!Path::new(p).exists(), "{p} appeared on the host");
    }
}

/// Case 3: `--rw` writes land on the host, owned by root for the root caller (idmapped mount) and by
/// the test user for the unprivileged caller; a `--ro` sibling stays read-only in the same run.
fn rw_writes_land(caller: Caller) {
    let t = TestDir::new("rw");
    let rw = t.mkdir("rw");
    let existing = t.write("rw/existing.txt", b"line1\n");
    caller.own(Path::new(&rw));
    let ro = t.mkdir("ro");

    let script = Script::new()
        .probe(
            "create",
            &format!("echo created-inside > {rw}/new.txt && cat {rw}/new.txt"),
        )
        .probe(
            "append",
            &format!("echo line2 >> {existing} && cat {existing}"),
        )
        .probe(
            "mkdir",
            &format!("mkdir {rw}/sub && echo nested > {rw}/sub/n.txt"),
        )
        .probe("ro_sibling", &format!("echo x > {ro}/x"))
        .build();
    let out = sh(caller, &["--rw", &rw, "--ro", &ro], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("create", "created-inside");
    p.ok("append", "line1 line2");
    p.ok_any("mkdir");
    p.fails_with("ro_sibling", "Read-only file system");

    assert_eq!(
        fs::read_to_string(format!("{rw}/new.txt")).unwrap(),
        "created-inside\n"
    );
    assert_eq!(fs::read_to_string(&existing).unwrap(), "line1\nline2\n");
    assert_eq!(
        fs::read_to_string(format!("{rw}/sub/n.txt")).unwrap(),
        "nested\n"
    );
    let want = (caller.host_uid(), caller.host_gid());
    for f in ["new.txt", "sub", "sub/n.txt"] {
        assert_eq!(
            owner(&Path::new(&rw).join(f)),
            want,
            "host owner of {f} written through --rw"
        );
    }
    assert_eq!(listing(Path::new(&ro)), Vec::<String>::new());
}

/// Case 4: `--overlay`: inside, overwrite, delete and create all work and read back; afterwards the
/// host file bytes, xattrs, metadata and the dir listing are exactly as before.
fn overlay_writes_vanish(caller: Caller) {
    let t = TestDir::new("overlay");
    let ov = t.mkdir("ov");
    let f = t.write("ov/file.txt", b"lower bytes\n");
    let g = t.write("ov/doomed.txt", b"delete me inside\n");
    set_xattr(Path::new(&f), "user.stockade", b"lower-xattr");
    // Unprivileged overlay copy-up of files owned by an unmapped id fails with EOVERFLOW
    // (kernel limitation), so the user's overlay files belong to the user.
    caller.own(Path::new(&ov));

    let snapshot = |path: &str| {
        let m = fs::symlink_metadata(path).unwrap();
        use std::os::unix::fs::MetadataExt;
        (
            fs::read(path).unwrap(),
            xattrs(Path::new(path)),
            m.mode(),
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec(),
        )
    };
    let f_before = snapshot(&f);
    let g_before = snapshot(&g);
    assert_eq!(
        f_before.1.get("user.stockade").map(Vec::as_slice),
        Some(&b"lower-xattr"[..])
    );
    let listing_before = listing(Path::new(&ov));

    let script = Script::new()
        .probe("read_lower", &format!("cat {f}"))
        .probe("overwrite", &format!("echo upper bytes > {f} && cat {f}"))
        .probe("append", &format!("echo more >> {f} && cat {f}"))
        .probe("delete", &format!("rm {g} && ls {ov}"))
        .probe(
            "create",
            &format!("echo brand new > {ov}/new.txt && cat {ov}/new.txt"),
        )
        .probe("mkdir", &format!("mkdir {ov}/newdir && ls {ov}"))
        .build();
    let out = sh(caller, &["--overlay", &ov], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("read_lower", "lower bytes");
    p.ok("overwrite", "upper bytes");
    p.ok("append", "upper bytes more");
    p.ok("delete", "file.txt");
    p.ok("create", "brand new");
    p.ok("mkdir", "file.txt new.txt newdir");

    assert_eq!(
        snapshot(&f),
        f_before,
        "host file (bytes, xattrs, mode, owner, mtime) changed"
    );
    assert_eq!(
        snapshot(&g),
        g_before,
        "host file deleted in the overlay changed"
    );
    assert_eq!(
        listing(Path::new(&ov)),
        listing_before,
        "host listing of the overlay dir changed"
    );

    // A second run sees the pristine lower again: the upper was discarded.
    let out = sh(
        caller,
        &["--overlay", &ov],
        &Script::new()
            .probe("again", &format!("cat {f}; ls {ov}"))
            .build(),
    );
    assert_code(&out, 0);
    probes(&out).ok("again", "lower bytes doomed.txt file.txt");
}

/// Case 13: /dev/kmsg and /sys are absent, /proc/kcore, /proc/keys and /proc/kallsyms read nothing,
/// /proc/sysrq-trigger cannot be written; /dev/null, /dev/zero, /dev/urandom and /dev/pts work.
fn kernel_interfaces_masked(caller: Caller) {
    // The host's /proc/keys and /proc/kallsyms do have content, so empty reads inside mean masking.
    assert!(!fs::read("/proc/kallsyms").unwrap().is_empty());
    let script = Script::new()
        .probe("null", "echo discard > /dev/null && echo ok")
        .probe("zero", "head -c 16 /dev/zero | od -An -tx1 | tr -d ' \\n'")
        .probe("urandom", "head -c 16 /dev/urandom | wc -c")
        .probe("pts", "test -d /dev/pts && echo ok")
        .probe("kmsg", "ls /dev/kmsg")
        .probe("kmsg_read", "head -c 1 /dev/kmsg")
        .probe("sys", "ls /sys")
        .probe("kcore", "cat /proc/kcore 2>/dev/null | wc -c")
        .probe("keys", "cat /proc/keys | wc -c")
        .probe("kallsyms", "cat /proc/kallsyms | wc -c")
        .probe("sysrq", "echo h > /proc/sysrq-trigger")
        .probe("proc_self", "cat /proc/self/comm")
        .probe(
            "proc_sys_hostname",
            "echo pwned > /proc/sys/kernel/hostname",
        )
        .probe("proc_sys_drop_caches", "echo 1 > /proc/sys/vm/drop_caches")
        .probe("proc_sys_read", "cat /proc/sys/kernel/ostype")
        .build();
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("null", "ok");
    p.ok("zero", "00000000000000000000000000000000");
    p.ok("urandom", "16");
    p.ok("pts", "ok");
    p.ok("proc_self", "cat");
    p.ok("proc_sys_read", "Linux");
    p.fails_with("proc_sys_hostname", "Read-only file system");
    p.fails_with("proc_sys_drop_caches", "Read-only file system");
    p.fails_with("kmsg", "No such file or directory");
    p.fails_with("kmsg_read", "No such file or directory");
    p.fails_with("sys", "No such file or directory");
    p.ok("kcore", "0");
    p.ok("keys", "0");
    p.ok("kallsyms", "0");
    // Absent (this host's kernel has none) or masked read-only: never a successful write.
    p.fails_with_one_of(
        "sysrq",
        &[
            "No such file or directory",
            "nonexistent",
            "Read-only file system",
            "Permission denied",
        ],
    );
}

/// Case 19: No /home, /root, /run or /var in the default view; /usr/bin/env is there.
fn default_view_minimal(caller: Caller) {
    let script = Script::new()
        .probe(
            "env",
            "test -x /usr/bin/env && /usr/bin/env true && echo ok",
        )
        .probe("usr", "ls -d /usr/bin")
        .probe("home", "ls /home")
        .probe("root", "ls /root")
        .probe("run", "ls /run")
        .probe("var", "ls /var")
        .build();
    let out = sh(caller, &[] as &[&str], &script);
    assert_code(&out, 0);
    let p = probes(&out);
    p.ok("env", "ok");
    p.ok("usr", "/usr/bin");
    for d in ["home", "root", "run", "var"] {
        p.fails_with(d, "No such file or directory");
    }
}

/// A read-only grant nested inside a read-write grant (the common "repo writable, `.git`
/// read-only" policy) must stay read-only, in either option order; the rest of the rw grant is
/// writable (positive control).
fn nested_ro_inside_rw(caller: Caller) {
    for ro_first in [false, true] {
        let t = TestDir::new("nested");
        let repo = t.mkdir("repo");
        let git = t.mkdir("repo/.git");
        let config = t.write("repo/.git/config", b"[core]\n");
        t.mkdir("repo/.git/hooks");
        caller.own(Path::new(&repo));
        let mut opts = vec!["--rw", repo.as_str(), "--ro", git.as_str()];
        if ro_first {
            opts.rotate_left(2);
        }
        let script = Script::new()
            .probe(
                "repo_write",
                &format!("echo code > {repo}/main.rs && cat {repo}/main.rs"),
            )
            .probe("git_read", &format!("cat {config}"))
            .probe("git_write", &format!("echo pwned >> {config}"))
            .probe("git_hook", &format!("echo pwned > {git}/hooks/pre-commit"))
            .build();
        let out = sh(caller, &opts, &script);
        assert_code(&out, 0);
        let p = probes(&out);
        p.ok("repo_write", "code");
        p.ok("git_read", "[core]");
        p.fails_with("git_write", "Read-only file system");
        p.fails_with("git_hook", "Read-only file system");
        assert_eq!(
            fs::read(&config).unwrap(),
            b"[core]\n",
            "host .git/config changed (options {opts:?})"
        );
        assert!(
            !Path::new(&git).join("hooks/pre-commit").exists(),
            "a hook was planted on the host (options {opts:?})"
        );
    }
}

/// A grant whose destination lies under a read-only system bind (/usr) cannot make its mount
/// point there: the run is refused (125, one line) and nothing appears on the host.
fn dst_under_system_dir(caller: Caller) {
    let t = TestDir::new("dstsys");
    let d = t.mkdir("d");
    t.write("d/f.txt", b"granted\n");
    let name = format!("/usr/stockade-it-{}", random_hex(4));

    let out = run(caller, &["--ro", &format!("{d}:{name}"), "--", "true"]);
    let line = assert_refused(&out);
    assert!(
        line.contains("Read-only file system") || line.contains("EROFS"),
        "{line}"
    );
    assert!(!Path::new(&name).exists(), "{name} was created on the host");

    // Positive control: a destination outside the system dirs works.
    let out = sh(caller, &["--ro", &format!("{d}:/data")], "cat /data/f.txt");
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "granted\n");
}
