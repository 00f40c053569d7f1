//! The workspace diff through the API on real sandboxes: `Child` after the
//! sandbox has ended (its overlay upper is kept open by the host), and
//! `Session` between commands; reading new contents and applying a subset.

mod common;

use std::fs;
use std::path::Path;

use common::{require_root, text, write_tree, Workspace};
use stockade::workspace::{ChangeKind, FileKind};
use stockade::{Fs, Sandbox};

fn listed(diff: &stockade::workspace::WorkspaceDiff) -> Vec<(String, ChangeKind)> {
    diff.changes
        .iter()
        .map(|c| (c.path.display().to_string(), c.kind.clone()))
        .collect()
}

#[test]
fn a_finished_sandbox_keeps_its_diff_readable_and_appliable() {
    require_root();
    let ws = Workspace::new("wsapi");
    let proj = ws.path().join("proj");
    write_tree(
        &proj,
        &[("a.txt", "a\n"), ("b.txt", "b\n"), ("same.txt", "same\n")],
    );
    let mut child = Sandbox::new()
        .fs(Fs::minimal().overlay(&proj))
        .cwd(&proj)
        .command([
            "sh",
            "-c",
            "echo more >> a.txt && rm b.txt && echo new > c.txt && cat same.txt >/dev/null",
        ])
        .spawn()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // The sandbox is gone; its writes are still readable from the host.
    let diffs = child.workspace_diff().unwrap();
    assert_eq!(diffs.len(), 1);
    let d = &diffs[0];
    assert_eq!(d.src, proj);
    assert_eq!(
        listed(d),
        [
            ("a.txt".to_string(), ChangeKind::Modified),
            ("b.txt".to_string(), ChangeKind::Deleted),
            ("c.txt".to_string(), ChangeKind::Created),
        ]
    );
    assert_eq!(d.read(Path::new("a.txt")).unwrap(), b"a\nmore\n");
    assert_eq!(d.changes[2].file_kind, FileKind::File);
    // The host copy is untouched until something is applied.
    assert_eq!(fs::read_to_string(proj.join("a.txt")).unwrap(), "a\n");
    assert!(proj.join("b.txt").exists() && !proj.join("c.txt").exists());
    // Apply only what the reviewer accepts: the new file, not the rest.
    let report = d.apply(|c| c.kind == ChangeKind::Created).unwrap();
    assert_eq!(report.applied, [Path::new("c.txt")]);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(fs::read_to_string(proj.join("c.txt")).unwrap(), "new\n");
    assert_eq!(fs::read_to_string(proj.join("a.txt")).unwrap(), "a\n");
    assert!(proj.join("b.txt").exists());

    // No overlay, no diff.
    let mut plain = Sandbox::new().command(["true"]).spawn().unwrap();
    plain.wait().unwrap();
    assert!(plain.workspace_diff().unwrap().is_empty());
}

#[test]
fn a_session_shows_the_diff_between_commands() {
    require_root();
    let ws = Workspace::new("wssession");
    let proj = ws.path().join("proj");
    write_tree(&proj, &[("keep.txt", "keep\n")]);
    let session = Sandbox::new()
        .fs(Fs::minimal().overlay(&proj))
        .cwd(&proj)
        .session()
        .unwrap();
    let run = |script: &str| {
        let out = session.command(["sh", "-c", script]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    assert!(listed(&session.workspace_diff().unwrap()[0]).is_empty());
    run("echo draft > notes.txt");
    assert_eq!(
        listed(&session.workspace_diff().unwrap()[0]),
        [("notes.txt".to_string(), ChangeKind::Created)]
    );
    // Created and removed again inside the sandbox: nothing to review.
    run("rm notes.txt && echo k2 > keep.txt");
    assert_eq!(
        listed(&session.workspace_diff().unwrap()[0]),
        [("keep.txt".to_string(), ChangeKind::Modified)]
    );
    assert_eq!(fs::read_to_string(proj.join("keep.txt")).unwrap(), "keep\n");
}
