//! `--diff FILE` and `--apply`: what the command changed under its
//! `--overlay` paths, written out for review and applied on success.

use std::path::Path;

use serde::Serialize;
use stockade::workspace::{ApplyReport, Change};
use stockade::{Child, ExitStatus};

/// The `--diff` file: one entry per overlay.
#[derive(Serialize)]
struct DiffFile<'a> {
    overlays: Vec<OverlayEntry<'a>>,
    /// Set when the diff could not be read (the file then lists nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct OverlayEntry<'a> {
    src: &'a Path,
    dst: &'a Path,
    changes: &'a [Change],
    /// With `--apply`: what was applied and what was skipped, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<ApplyReport>,
}

/// Scan the overlays, apply them if asked and the command succeeded, write
/// the diff file. Problems go to stderr; the exit status stays the
/// command's own.
pub fn review(child: &Child, status: &ExitStatus, diff_file: Option<&Path>, apply: bool) {
    let diffs = match child.workspace_diff() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("stockade: cannot read the workspace diff: {e}; nothing applied");
            if let Some(path) = diff_file {
                let file = DiffFile {
                    overlays: Vec::new(),
                    error: Some(e.to_string()),
                };
                write(path, &file);
            }
            return;
        }
    };
    let apply = apply && {
        if !status.success() {
            eprintln!("stockade: --apply: not applied, the command ended with {status}");
        }
        status.success()
    };
    let mut overlays = Vec::new();
    for d in &diffs {
        let applied = if apply {
            match d.apply(|_| true) {
                Ok(r) => {
                    for (path, why) in &r.skipped {
                        eprintln!(
                            "stockade: --apply: skipped {}: {why}",
                            d.src.join(path).display()
                        );
                    }
                    Some(r)
                }
                Err(e) => {
                    eprintln!("stockade: --apply: {}: {e}", d.src.display());
                    None
                }
            }
        } else {
            None
        };
        overlays.push(OverlayEntry {
            src: &d.src,
            dst: &d.dst,
            changes: &d.changes,
            applied,
        });
    }
    if let Some(path) = diff_file {
        write(
            path,
            &DiffFile {
                overlays,
                error: None,
            },
        );
    }
}

fn write(path: &Path, file: &DiffFile<'_>) {
    let text = match serde_json::to_string_pretty(file) {
        Ok(t) => t + "\n",
        Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
    };
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("stockade: cannot write diff {}: {e}", path.display());
    }
}
