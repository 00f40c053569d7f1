//! The files a git config file includes (`include.path`, and
//! `includeIf.<condition>.path` whatever the condition): git reads them as
//! part of the config, so they are as able to run programs as the config
//! itself.
//!
//! The reader is deliberately simple and errs towards listing: it looks at
//! `path` keys in `[include]` and `[includeIf ...]` sections, with git's
//! quoting, escapes, comments and continuation lines.

use std::fs;
use std::path::{Path, PathBuf};

use super::normalize;

/// git's own limit on nested includes.
const MAX_DEPTH: usize = 10;

/// The largest config file read.
const MAX_CONFIG: u64 = 1 << 20;

/// Every file `config` includes, directly or through the files it includes,
/// resolved on the host. Files that do not exist are listed too: git skips
/// them, but would read one created later.
pub(super) fn included(config: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(config, 0, &mut out);
    out
}

fn walk(config: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth >= MAX_DEPTH {
        return;
    }
    let Some(text) = read(config) else {
        return;
    };
    for value in include_paths(&text) {
        let Some(target) = resolve(config, &value) else {
            continue;
        };
        if out.contains(&target) {
            continue;
        }
        out.push(target.clone());
        walk(&target, depth + 1, out);
    }
}

fn read(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Where git looks for an include `value` found in `config`: `~/` is the
/// home directory, a relative path is relative to `config`'s directory.
/// `%(prefix)/` (git's installation) and `~user/` are not followed.
fn resolve(config: &Path, value: &str) -> Option<PathBuf> {
    let path = if let Some(rest) = value.strip_prefix("~/") {
        PathBuf::from(std::env::var_os("HOME")?).join(rest)
    } else if value.starts_with('~') || value.starts_with("%(prefix)") || value.is_empty() {
        return None;
    } else if Path::new(value).is_absolute() {
        PathBuf::from(value)
    } else {
        config.parent()?.join(value)
    };
    let path = normalize(&path)?;
    // The host's symlinks decide where it really is.
    if let Ok(real) = fs::canonicalize(&path) {
        return Some(real);
    }
    match (path.parent().map(fs::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => Some(dir.join(name)),
        _ => Some(path),
    }
}

/// The `path` values of the include sections of a config file's text.
pub(super) fn include_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_include = false;
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut line = first.trim_start().to_string();
        // A value may continue on the next line after a backslash.
        while ends_with_continuation(&line) {
            line.pop();
            match lines.next() {
                Some(next) => line.push_str(next),
                None => break,
            }
        }
        let mut rest = line.as_str();
        if let Some(header) = rest.strip_prefix('[') {
            let Some(end) = header.find(']') else {
                continue;
            };
            let name = header[..end]
                .split(|c: char| c.is_whitespace() || c == '"' || c == '.')
                .next()
                .unwrap_or("");
            in_include =
                name.eq_ignore_ascii_case("include") || name.eq_ignore_ascii_case("includeif");
            // A key may follow the header on the same line.
            rest = header[end + 1..].trim_start();
        }
        if !in_include {
            continue;
        }
        let Some((key, value)) = rest.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("path") {
            out.push(unquote(value));
        }
    }
    out
}

/// An odd number of trailing backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// A config value as git reads it: quotes removed, escapes resolved, a
/// comment (`#`, `;`) outside quotes ends it, outer whitespace dropped.
fn unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    // Whitespace outside quotes counts only between other characters.
    let mut pending_space = String::new();
    let mut chars = raw.trim_start().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '#' | ';' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                pending_space.push(c);
                continue;
            }
            '\\' => {
                out.push_str(&pending_space);
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('b') => {
                        out.pop();
                    }
                    Some(other) => out.push(other),
                    None => {}
                }
            }
            c => {
                out.push_str(&pending_space);
                out.push(c);
            }
        }
        pending_space.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_include_if_paths_with_git_quoting() {
        let text = "[core]\n\tpath = not-an-include\n\
                    [include]\n\tpath = local.cfg ; comment\n\
                    [Include] PATH = \"with space.cfg\"\n\
                    [includeIf \"gitdir:~/work/\"]\n\tpath = ../a\\\"b\n\
                    [includeIf.onbranch:main]\n\tpath = x\\\n.cfg\n\
                    [user]\n\tname = path = nope\n";
        assert_eq!(
            include_paths(text),
            ["local.cfg", "with space.cfg", "../a\"b", "x.cfg"]
        );
    }

    #[test]
    fn nested_includes_resolve_from_each_file_and_stop_at_cycles() {
        let dir = std::env::temp_dir().join(format!("stockade-inc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        let dir = fs::canonicalize(&dir).unwrap();
        fs::write(dir.join("config"), "[include]\n\tpath = sub/one\n").unwrap();
        fs::write(
            dir.join("sub/one"),
            "[include]\n\tpath = ../config\n\tpath = missing\n",
        )
        .unwrap();
        let got = included(&dir.join("config"));
        assert_eq!(
            got,
            [
                dir.join("sub/one"),
                dir.join("config"),
                dir.join("sub/missing")
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
