//! Compatibility suite: the tools an agent actually runs, each inside the
//! DEFAULT sandbox (`Fs::minimal()` plus one read-write workspace as cwd),
//! each asserting real output.

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_root, text, Workspace};
use stockade::{Fs, Output, Sandbox};

/// Run `script` with `sh -c` in the default sandbox with `ws` as rw cwd.
fn run_in(ws: &Workspace, script: &str) -> Output {
    Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .cwd(ws.path())
        .command(["sh", "-c", script])
        .output()
        .unwrap_or_else(|e| panic!("sandbox failed for `{script}`: {e}"))
}

/// Like [`run_in`] but the script must succeed; returns stdout.
fn ok_in(ws: &Workspace, script: &str) -> String {
    let out = run_in(ws, script);
    assert!(
        out.status.success(),
        "`{script}` failed inside the sandbox: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn host_has(program: &str) -> bool {
    Command::new("which")
        .arg(program)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn sh_pipelines() {
    require_root();
    let ws = Workspace::new("pipe");
    assert_eq!(ok_in(&ws, "printf 'b\\na\\n' | sort | head -1"), "a\n");
    assert_eq!(
        ok_in(&ws, "seq 1 100 | awk '{s+=$1} END {print s}'"),
        "5050\n"
    );
    assert_eq!(ok_in(&ws, "echo $(( 6 * 7 ))"), "42\n");
    assert_eq!(
        ok_in(&ws, "x=$(echo inner); echo \"outer $x\""),
        "outer inner\n"
    );
    assert_eq!(
        ok_in(&ws, "printf 'c\\nb\\na\\nb\\n' | sort -u | tr '\\n' ,"),
        "a,b,c,"
    );
    assert_eq!(ok_in(&ws, "yes | head -3 | xargs echo"), "y y y\n");
    // Here-document (the shell writes it to a temp file or pipe).
    assert_eq!(ok_in(&ws, "cat <<EOF\nheredoc\nEOF"), "heredoc\n");
    // bash too, with process substitution (needs /dev/fd).
    assert_eq!(
        ok_in(&ws, "bash -c 'diff <(echo a) <(echo a) && echo same'"),
        "same\n"
    );
}

#[test]
fn coreutils_file_operations() {
    require_root();
    let ws = Workspace::new("coreutils");
    ok_in(&ws, "mkdir -p d/e && echo hello > d/f.txt && cp d/f.txt g.txt && mv g.txt h.txt && touch d/e/empty");
    assert_eq!(ok_in(&ws, "ls d"), "e\nf.txt\n");
    assert_eq!(ok_in(&ws, "ls"), "d\nh.txt\n");
    assert_eq!(ok_in(&ws, "cat h.txt"), "hello\n");
    assert_eq!(ok_in(&ws, "wc -l < h.txt; wc -c < h.txt"), "1\n6\n");
    assert_eq!(
        ok_in(&ws, "sha256sum h.txt"),
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  h.txt\n"
    );
    assert_eq!(
        ok_in(&ws, "md5sum < h.txt"),
        "b1946ac92492d2347c6235b4d2611184  -\n"
    );
    ok_in(
        &ws,
        "rm h.txt && rm -r d/e && test ! -e h.txt && test ! -e d/e",
    );
    assert_eq!(ok_in(&ws, "ls -A"), "d\n");
    assert_eq!(
        ok_in(&ws, "ln -s d/f.txt link && readlink link && cat link"),
        "d/f.txt\nhello\n"
    );
    assert_eq!(
        ok_in(&ws, "chmod 600 d/f.txt && stat -c %a d/f.txt"),
        "600\n"
    );
    // `ls -l` resolves owner names through /etc/passwd.
    let long = ok_in(&ws, "ls -l d/f.txt");
    assert!(long.starts_with("-rw------- 1 root root 6 "), "{long}");
    // The workspace is the host directory: the files are really there.
    assert_eq!(
        std::fs::read_to_string(ws.path().join("d/f.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_link(ws.path().join("link")).unwrap(),
        Path::new("d/f.txt")
    );
}

#[test]
fn coreutils_text_tools() {
    require_root();
    let ws = Workspace::new("text");
    assert_eq!(
        ok_in(&ws, "echo 'Hello World' | tr a-z A-Z"),
        "HELLO WORLD\n"
    );
    assert_eq!(
        ok_in(&ws, "echo 'foo bar foo' | sed 's/foo/baz/g'"),
        "baz bar baz\n"
    );
    assert_eq!(
        ok_in(&ws, "printf 'a 1\\nb 2\\nc 3\\n' | awk '$2 > 1 {print $1}'"),
        "b\nc\n"
    );
    assert_eq!(
        ok_in(
            &ws,
            "printf 'x\\ny\\nx\\n' | sort | uniq -c | awk '{print $1 $2}'"
        ),
        "2x\n1y\n"
    );
    assert_eq!(
        ok_in(
            &ws,
            "printf 'k=v\\n' > f.conf && sed -i 's/v/w/' f.conf && cat f.conf"
        ),
        "k=w\n"
    );
    assert_eq!(
        ok_in(&ws, "echo abc > a.txt && grep -rn b ."),
        "./a.txt:1:abc\n"
    );
    assert_eq!(ok_in(&ws, "echo 'a,b,c' | cut -d, -f2"), "b\n");
    assert_eq!(
        ok_in(
            &ws,
            "printf '1\\n2\\n' > x; printf '1\\n3\\n' > y; diff x y | grep '^[<>]'"
        ),
        "< 2\n> 3\n"
    );
    assert_eq!(ok_in(&ws, "echo aGVsbG8K | base64 -d"), "hello\n");
}

#[test]
fn coreutils_env_and_date() {
    require_root();
    let ws = Workspace::new("env");
    let env = ok_in(&ws, "env | sort");
    assert!(env.lines().any(|l| l == "HOME=/tmp"), "{env}");
    assert!(
        env.lines()
            .any(|l| l.starts_with("PATH=") && l.contains("/usr/bin")),
        "{env}"
    );
    assert_eq!(ok_in(&ws, "env FOO=bar sh -c 'echo $FOO'"), "bar\n");
    assert_eq!(ok_in(&ws, "date -u -d @0 +%F"), "1970-01-01\n");
    // The wall clock inside is the host's (the time namespace only moves
    // monotonic/boot clocks).
    let inside: i64 = ok_in(&ws, "date +%s").trim().parse().unwrap();
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (inside - host).abs() <= 5,
        "inside date {inside} vs host {host}"
    );
    // whoami / id need /etc/passwd and /etc/group.
    assert_eq!(ok_in(&ws, "whoami; id -un; id -gn"), "root\nroot\nroot\n");
    assert_eq!(ok_in(&ws, "pwd"), format!("{}\n", ws.str()));
    assert_eq!(
        ok_in(&ws, "cd && pwd && echo tmpwrite > x && cat x"),
        "/tmp\ntmpwrite\n"
    );
}

#[test]
fn devices_and_proc_basics() {
    require_root();
    let ws = Workspace::new("dev");
    assert_eq!(
        ok_in(
            &ws,
            "echo gone > /dev/null; head -c 16 /dev/urandom | wc -c"
        ),
        "16\n"
    );
    assert_eq!(
        ok_in(&ws, "head -c 4 /dev/zero | od -An -tx1 | tr -d ' '"),
        "00000000\n"
    );
    assert_eq!(ok_in(&ws, "nproc >/dev/null && echo ok"), "ok\n");
    // ps reads the private /proc: our shell is there, and the pid namespace is small.
    let ps = ok_in(&ws, "ps -eo pid=,comm=");
    assert!(
        ps.lines().any(|l| l.trim_start().starts_with("1 ")),
        "no PID 1 in ps: {ps}"
    );
    assert!(ps.lines().count() <= 5, "host processes visible? {ps}");
}

/// Scripts commonly write to `/dev/stdout` / `/dev/stderr` and read
/// `/dev/stdin`; these reopen the standard descriptors through /proc, which
/// needs permission on the pipe the caller created.
#[test]
fn dev_stdio_paths_are_usable() {
    require_root();
    let ws = Workspace::new("devstdio");
    let out =
        run_in(&ws, "echo to-stdout > /dev/stdout; echo to-stderr > /dev/stderr; echo via-proc > /proc/self/fd/1");
    assert_eq!(
        (text(&out.stdout).as_str(), text(&out.stderr).as_str()),
        ("to-stdout\nvia-proc\n", "to-stderr\n"),
        "status {}",
        out.status
    );
    assert!(out.status.success(), "{}", out.status);
    // Reading /dev/stdin from a piped stdin.
    let mut child = Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .command(["cat", "/dev/stdin"])
        .stdin(stockade::Stdio::piped())
        .stdout(stockade::Stdio::piped())
        .stderr(stockade::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "from-stdin\n",
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(out.status.success(), "{}", out.status);
}

#[test]
fn python3_stdlib() {
    require_root();
    let ws = Workspace::new("py");
    let script = r#"python3 -c '
import json, sqlite3, ssl, hashlib, os, tempfile
db = sqlite3.connect("t.db")
db.execute("create table t (x)")
db.execute("insert into t values (41)")
db.commit()
n = db.execute("select x + 1 from t").fetchone()[0]
ctx = ssl.create_default_context()
with tempfile.NamedTemporaryFile() as f:
    tmp = os.path.dirname(f.name)
print(json.dumps({"n": n, "sha": hashlib.sha256(b"hello\n").hexdigest()[:8], "ssl": ssl.OPENSSL_VERSION.split()[0], "certs": ctx.cert_store_stats()["x509_ca"] > 0, "tmp": tmp}, sort_keys=True))
'"#;
    let out = ok_in(&ws, script);
    assert_eq!(out, "{\"certs\": true, \"n\": 42, \"sha\": \"5891b5b5\", \"ssl\": \"OpenSSL\", \"tmp\": \"/tmp\"}\n");
    assert!(
        ws.path().join("t.db").is_file(),
        "sqlite file not written to the workspace"
    );
    assert_eq!(
        ok_in(&ws, "python3 -c 'import sys; print(sys.version_info[0])'"),
        "3\n"
    );
    // multiprocessing needs /dev/shm semaphores; venv writes into the workspace.
    assert_eq!(
        ok_in(
            &ws,
            "python3 -c 'import multiprocessing as m; print(m.Pool(2).map(abs, [1, -2]))'"
        ),
        "[1, 2]\n"
    );
    assert_eq!(
        ok_in(&ws, "python3 -m venv --without-pip venv && ./venv/bin/python -c 'import sys; print(sys.prefix != sys.base_prefix)'"),
        "True\n"
    );
    // A script file, and a subprocess from Python.
    std::fs::write(
        ws.path().join("s.py"),
        "import subprocess\nprint(subprocess.check_output(['echo', 'sub']).decode().strip())\n",
    )
    .unwrap();
    assert_eq!(ok_in(&ws, "python3 s.py"), "sub\n");
}

#[test]
fn node_runs() {
    require_root();
    if !host_has("node") {
        println!("NOTICE: node not found on the host (`which node` failed); skipping node_runs");
        return;
    }
    let ws = Workspace::new("node");
    assert_eq!(ok_in(&ws, "node -e 'console.log(1+1)'"), "2\n");
    let out = ok_in(
        &ws,
        "node -e \"const fs=require('fs'),c=require('crypto'),os=require('os');\
         fs.writeFileSync('n.txt','hi');\
         console.log(fs.readFileSync('n.txt','utf8'), c.createHash('sha256').update('hello\\n').digest('hex').slice(0,8), os.tmpdir())\"",
    );
    assert_eq!(out, "hi 5891b5b5 /tmp\n");
    // child_process (node uses its own spawn path).
    assert_eq!(
        ok_in(&ws, "node -e \"console.log(require('child_process').execSync('echo kid').toString().trim())\""),
        "kid\n"
    );
}

fn git_round_trip(git: &str) {
    let ws = Workspace::new("git");
    let script = format!(
        "set -e; mkdir repo && cd repo && {git} init -q && {git} config user.email x@y && {git} config user.name x \
         && {git} commit -q --allow-empty -m m && {git} log --oneline"
    );
    let log = ok_in(&ws, &script);
    let line = log.trim_end();
    let (hash, msg) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("{git} log: {log:?}"));
    assert!(
        hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{git} log: {log:?}"
    );
    assert_eq!(msg, "m", "{git} log: {log:?}");
    assert_eq!(log.lines().count(), 1);

    // A worktree next to the repo, still inside the rw workspace.
    let wt = ok_in(
        &ws,
        &format!(
            "set -e; cd repo && echo f > f.txt && {git} add f.txt && {git} commit -q -m add \
             && {git} worktree add -q ../wt 2>&1 && cd ../wt && cat f.txt && {git} log --oneline | wc -l \
             && {git} worktree list | wc -l && {git} status --porcelain | wc -l"
        ),
    );
    assert_eq!(wt, "f\n2\n2\n0\n", "{git} worktree");
    assert!(ws.path().join("wt/f.txt").is_file());
    // The host's git sees the same repository.
    let host = Command::new("git")
        .args([
            "-C",
            ws.path().join("repo").to_str().unwrap(),
            "-c",
            "safe.directory=*",
            "log",
            "--format=%s",
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&host.stdout),
        "add\nm\n",
        "host git: {}",
        text(&host.stderr)
    );
}

#[test]
fn git_init_commit_log_worktree() {
    require_root();
    git_round_trip("git");
}

#[test]
fn git_both_binaries() {
    require_root();
    for git in ["/usr/bin/git", "/usr/local/bin/git"] {
        if Path::new(git).exists() {
            git_round_trip(git);
        } else {
            println!("NOTICE: {git} not on this host; skipped");
        }
    }
}

#[test]
fn gcc_and_make() {
    require_root();
    let ws = Workspace::new("cc");
    std::fs::write(
        ws.path().join("hello.c"),
        "#include <stdio.h>\nint main(void) { printf(\"hello from c\\n\"); return 0; }\n",
    )
    .unwrap();
    assert_eq!(
        ok_in(&ws, "gcc hello.c -o hello && ./hello"),
        "hello from c\n"
    );
    std::fs::write(
        ws.path().join("Makefile"),
        "all: greet\n\ngreet: greet.c\n\t$(CC) -O1 -o $@ $<\n\nrun: greet\n\t./greet\n\nclean:\n\trm -f greet\n",
    )
    .unwrap();
    std::fs::write(
        ws.path().join("greet.c"),
        "#include <stdio.h>\n#include <math.h>\nint main(void) { printf(\"%d\\n\", (int)sqrt(49.0)); return 0; }\n",
    )
    .unwrap();
    let out = ok_in(&ws, "make -s run");
    assert_eq!(out, "7\n");
    assert_eq!(
        ok_in(&ws, "make -s clean && test ! -e greet && echo clean"),
        "clean\n"
    );
    // cc/c++ via the alternatives links in /etc.
    if Path::new("/usr/bin/g++").exists() {
        std::fs::write(
            ws.path().join("h.cpp"),
            "#include <iostream>\nint main(){std::cout<<\"cpp\\n\";}\n",
        )
        .unwrap();
        assert_eq!(ok_in(&ws, "g++ h.cpp -o hpp && ./hpp"), "cpp\n");
    }
}

#[test]
fn tar_gzip_round_trip() {
    require_root();
    let ws = Workspace::new("tar");
    let out = ok_in(
        &ws,
        "set -e; mkdir -p src/sub && echo one > src/a.txt && echo two > src/sub/b.txt \
         && tar czf a.tgz src && mkdir out && tar xzf a.tgz -C out && diff -r src out/src && echo same \
         && tar tzf a.tgz | sort",
    );
    assert_eq!(out, "same\nsrc/\nsrc/a.txt\nsrc/sub/\nsrc/sub/b.txt\n");
    // The host's tar agrees with the archive.
    let host = Command::new("tar")
        .args(["tzf", ws.path().join("a.tgz").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(host.status.success());
    assert_eq!(text(&host.stdout).lines().count(), 4);
}

/// Test servers on loopback, with the opt-in `allow_loopback_tcp` (by
/// default Landlock denies TCP bind and connect): `localhost` resolves (to ::1
/// first) and both address families work on the sandbox's `lo`. The same
/// script without the opt-in is refused at `bind` (EACCES from Landlock).
#[test]
fn loopback_server_and_client() {
    require_root();
    let ws = Workspace::new("lo");
    let script = r#"python3 -c '
import http.server, threading, urllib.request, socket
s = http.server.HTTPServer(("localhost", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=s.serve_forever, daemon=True).start()
r = urllib.request.urlopen("http://localhost:%d/" % s.server_port)
six = socket.socket(socket.AF_INET6); six.bind(("::1", 0)); six.listen()
print(r.status, socket.gethostname(), six.getsockname()[0])
'"#;
    let sb = Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .cwd(ws.path())
        .allow_loopback_tcp(true);
    assert_eq!(ok_with(sb, script), "200 stockade ::1\n");
    let denied = run_in(&ws, script);
    assert_eq!(denied.status.code(), Some(1), "{denied:?}");
    assert!(
        text(&denied.stderr).contains("PermissionError: [Errno 13]"),
        "{}",
        text(&denied.stderr)
    );
}

#[test]
fn find_and_grep() {
    require_root();
    let ws = Workspace::new("find");
    ok_in(&ws, "mkdir -p b/c && touch a.txt b/c.txt b/c/d.md");
    assert_eq!(ok_in(&ws, "find . -name '*.txt' | grep -c txt"), "2\n");
    assert_eq!(
        ok_in(&ws, "find . -type f | sort"),
        "./a.txt\n./b/c.txt\n./b/c/d.md\n"
    );
    assert_eq!(
        ok_in(&ws, "find . -name '*.md' -exec basename {} \\;"),
        "d.md\n"
    );
}
