//! `--overlay SRC --diff FILE [--apply]`, for root and an unprivileged
//! caller, on a real sandbox: the change list names exactly what the command
//! changed (created, modified, deleted, renamed, chmod, symlinks; untouched
//! files absent); `--apply` writes it to SRC only after a successful exit,
//! never creates a symlink that leaves the tree, and never follows one.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

for_each_caller! {
    root_diff_lists_exactly_what_changed_and_the_host_is_untouched,
    user_diff_lists_exactly_what_changed_and_the_host_is_untouched
        => diff_only;
    root_apply_writes_the_changes_but_never_an_escaping_symlink,
    user_apply_writes_the_changes_but_never_an_escaping_symlink
        => apply_on_success;
    root_apply_is_skipped_when_the_command_fails,
    user_apply_is_skipped_when_the_command_fails
        => no_apply_on_failure;
}

/// The project the agent works on, owned by the caller.
fn project(caller: Caller, t: &TestDir, name: &str) -> String {
    let p = t.mkdir(name);
    for (rel, text) in [
        ("a.txt", "a\n"),
        ("keep.txt", "keep\n"),
        ("untouched.txt", "same\n"),
        ("del.txt", "gone\n"),
        ("sub/f", "old\n"),
    ] {
        let f = Path::new(&p).join(rel);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, text).unwrap();
    }
    caller.own(Path::new(&p));
    p
}

/// What the "agent" does in the overlay.
const EDIT: &str = "echo b >> a.txt && echo new > new.txt && rm del.txt && mv sub sub2 \
    && chmod 600 keep.txt && ln -s /etc/passwd evil && ln -s a.txt link \
    && cat untouched.txt >/dev/null";

/// `stockade run --overlay PROJ --cwd PROJ OPTS -- sh -c SCRIPT`.
fn agent(caller: Caller, proj: &str, opts: &[&str], script: &str) -> std::process::Output {
    let mut args = vec!["--overlay", proj, "--cwd", proj];
    args.extend_from_slice(opts);
    args.extend(["--", "sh", "-c", script]);
    run(caller, &args)
}

fn changes(diff: &str) -> Vec<(String, String)> {
    let d: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(diff).unwrap_or_else(|e| panic!("read {diff}: {e}")),
    )
    .unwrap();
    d["overlays"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let kind = match c["from"].as_str() {
                Some(from) => format!("renamed from {from}"),
                None => c["kind"].as_str().unwrap().to_string(),
            };
            (c["path"].as_str().unwrap().to_string(), kind)
        })
        .collect()
}

fn snapshot(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(dir).to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                format!("dir {:o}", m.permissions().mode() & 0o777)
            } else {
                format!(
                    "{:o} {}",
                    m.permissions().mode() & 0o777,
                    fs::read_to_string(&p).unwrap()
                )
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

fn diff_only(caller: Caller) {
    let t = TestDir::new("wsdiff");
    let proj = project(caller, &t, "proj");
    let out_dir = t.mkdir("out");
    caller.own(Path::new(&out_dir));
    let diff = format!("{out_dir}/diff.json");
    let before = snapshot(&proj);
    let out = agent(caller, &proj, &["--diff", &diff], EDIT);
    assert_code(&out, 0);
    let want: Vec<(String, String)> = [
        ("a.txt", "modified"),
        ("del.txt", "deleted"),
        ("evil", "created"),
        ("keep.txt", "modified"),
        ("link", "created"),
        ("new.txt", "created"),
        ("sub2", "renamed from sub"),
    ]
    .iter()
    .map(|(p, k)| (p.to_string(), k.to_string()))
    .collect();
    assert_eq!(changes(&diff), want, "untouched.txt must not be listed");
    let d: serde_json::Value = serde_json::from_str(&fs::read_to_string(&diff).unwrap()).unwrap();
    let c = &d["overlays"][0]["changes"];
    let by = |p: &str| {
        c.as_array()
            .unwrap()
            .iter()
            .find(|x| x["path"] == p)
            .unwrap()
            .clone()
    };
    assert_eq!(by("evil")["escapes"], true);
    assert_eq!(by("evil")["link_target"], "/etc/passwd");
    assert_eq!(by("link")["escapes"], false);
    assert_eq!(by("keep.txt")["mode_changed"], true);
    assert_eq!(by("keep.txt")["content_changed"], false);
    assert_eq!(by("keep.txt")["mode"], 0o600);
    assert_eq!(by("a.txt")["content_changed"], true);
    // Without --apply the host copy is exactly as before.
    assert_eq!(snapshot(&proj), before);
}

fn apply_on_success(caller: Caller) {
    let t = TestDir::new("wsapply");
    let proj = project(caller, &t, "proj");
    let out = agent(caller, &proj, &["--apply"], EDIT);
    assert_code(&out, 0);
    // Everything landed except the escaping symlink, which is named on stderr.
    let got = snapshot(&proj);
    let want: Vec<(String, String)> = [
        ("a.txt", "644 a\nb\n"),
        ("keep.txt", "600 keep\n"),
        ("link", "-> a.txt"),
        ("new.txt", "644 new\n"),
        ("sub2", "dir 755"),
        ("sub2/f", "644 old\n"),
        ("untouched.txt", "644 same\n"),
    ]
    .iter()
    .map(|(p, k)| (p.to_string(), k.to_string()))
    .collect();
    assert_eq!(got, want, "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "skipped {proj}/evil: the symlink target leaves the tree"
        )),
        "{}",
        describe(&out)
    );
    // Files it created belong to the caller.
    let m = fs::metadata(Path::new(&proj).join("new.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(m.uid(), caller.host_uid());

    // A symlink in the host tree where the agent's change lands (`sub`
    // pointing at a directory the caller can write) is replaced, never
    // followed.
    let victim_dir = t.mkdir("victim");
    let victim = format!("{victim_dir}/secret");
    fs::write(&victim, "do not touch\n").unwrap();
    caller.own(Path::new(&victim_dir));
    let proj2 = project(caller, &t, "proj2");
    fs::remove_dir_all(Path::new(&proj2).join("sub")).unwrap();
    std::os::unix::fs::symlink(&victim_dir, Path::new(&proj2).join("sub")).unwrap();
    if caller == Caller::User {
        std::os::unix::fs::lchown(
            Path::new(&proj2).join("sub"),
            Some(caller.host_uid()),
            Some(caller.host_gid()),
        )
        .unwrap();
    }
    let out = agent(
        caller,
        &proj2,
        &["--apply"],
        "rm sub && mkdir sub && echo pwned > sub/secret",
    );
    assert_code(&out, 0);
    // Positive control first: the change was applied in the tree.
    assert_eq!(
        fs::read_to_string(Path::new(&proj2).join("sub/secret")).unwrap(),
        "pwned\n"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "do not touch\n");
}

fn no_apply_on_failure(caller: Caller) {
    let t = TestDir::new("wsfail");
    let proj = project(caller, &t, "proj");
    let before = snapshot(&proj);
    let out = agent(caller, &proj, &["--apply"], &format!("{EDIT}; exit 3"));
    assert_code(&out, 3);
    assert!(
        stderr(&out).contains("--apply: not applied, the command ended with exit status: 3"),
        "{}",
        describe(&out)
    );
    assert_eq!(snapshot(&proj), before);
}
