//! Compatibility suite: the tools an agent actually runs, each inside the
//! DEFAULT sandbox (`Fs::minimal()` plus one read-write workspace as cwd),
//! each asserting real output.

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_root, text, write_tree, Workspace};
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

/// Run `script` with `sh -c` in `sb` (which carries its own grants, env and
/// cwd); it must succeed. Returns stdout.
fn ok_with(sb: Sandbox, script: &str) -> String {
    let out = sb
        .command(["sh", "-c", script])
        .output()
        .unwrap_or_else(|e| panic!("sandbox failed for `{script}`: {e}"));
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

/// Builds a pure-Python wheel by hand (zipfile, METADATA, WHEEL, RECORD with
/// real hashes, a console-script entry point). Run by the venv's python.
const BUILD_WHEEL_PY: &str = r#"import base64, hashlib, os, zipfile
name, ver = "stockade_demo", "0.1.0"
dist = f"{name}-{ver}.dist-info"
files = {
    f"{name}/__init__.py": "def greet():\n    return 'hello from the wheel'\n\n\ndef main():\n    print('console script: ' + greet())\n",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: stockade-demo\nVersion: {ver}\nSummary: stockade compat test\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: stockade-compat (by hand)\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    f"{dist}/entry_points.txt": "[console_scripts]\nstockade-demo = stockade_demo:main\n",
}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join(f"{p},{digest(c.encode())},{len(c.encode())}\n" for p, c in files.items())
record += f"{dist}/RECORD,,\n"
os.makedirs("dist", exist_ok=True)
whl = f"dist/{name}-{ver}-py3-none-any.whl"
with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
    for p, c in files.items():
        z.writestr(p, c)
    z.writestr(f"{dist}/RECORD", record)
print(whl)
"#;

/// `python3 -m venv` (with pip, bootstrapped offline by ensurepip from
/// Debian's bundled wheels) and `pip install` of a local wheel, no index.
#[test]
fn python_venv_pip_install_local_wheel() {
    require_root();
    let ws = Workspace::new("venv");
    write_tree(ws.path(), &[("build_wheel.py", BUILD_WHEEL_PY)]);
    let sb = Sandbox::new()
        .fs(Fs::minimal().rw(ws.path()))
        .cwd(ws.path())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1");
    let out = ok_with(
        sb,
        "set -e; /usr/bin/python3 -m venv venv \
         && ./venv/bin/python build_wheel.py \
         && ./venv/bin/pip install --no-index --no-build-isolation dist/stockade_demo-0.1.0-py3-none-any.whl \
         && ./venv/bin/python -c 'import sys, stockade_demo as m; print(m.greet(), m.__file__.startswith(sys.prefix + \"/lib/\"), sys.prefix != sys.base_prefix, sys.base_prefix)' \
         && ./venv/bin/stockade-demo \
         && ./venv/bin/pip list --format=freeze | grep -i '^stockade'",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("dist/stockade_demo-0.1.0-py3-none-any.whl"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Successfully installed stockade-demo-0.1.0")),
        "pip did not report the install:\n{out}"
    );
    assert_eq!(
        &lines[lines.len() - 3..],
        [
            "hello from the wheel True True /usr",
            "console script: hello from the wheel",
            "stockade-demo==0.1.0",
        ],
        "{out}"
    );
    // The venv and the installed package are really in the workspace.
    let site = std::fs::read_dir(ws.path().join("venv/lib"))
        .unwrap()
        .flatten()
        .next()
        .expect("venv/lib/pythonX.Y")
        .path()
        .join("site-packages");
    assert!(
        site.join("stockade_demo/__init__.py").is_file(),
        "{}",
        site.display()
    );
    assert!(site.join("stockade_demo-0.1.0.dist-info/RECORD").is_file());
}

const NODE_WORKERS_JS: &str = r#"'use strict';
const { Worker, isMainThread, parentPort, workerData, threadId } = require('worker_threads');
if (isMainThread) {
  const N = 4, LIMIT = 200000;
  const shared = new Int32Array(new SharedArrayBuffer(4));
  const jobs = [];
  for (let i = 0; i < N; i++) {
    jobs.push(new Promise((resolve, reject) => {
      const w = new Worker(__filename, {
        workerData: { lo: (i * LIMIT) / N, hi: ((i + 1) * LIMIT) / N, sab: shared.buffer },
      });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (c) => { if (c !== 0) reject(new Error('worker exited ' + c)); });
    }));
  }
  Promise.all(jobs).then((rs) => {
    const primes = rs.reduce((s, r) => s + r.count, 0);
    const tids = new Set(rs.map((r) => r.tid));
    console.log(JSON.stringify({ primes, workers: tids.size, mainTid: threadId, shared: Atomics.load(shared, 0) }));
  }).catch((e) => { console.error(e); process.exit(1); });
} else {
  const { lo, hi, sab } = workerData;
  let count = 0;
  for (let n = Math.max(2, lo); n < hi; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
    if (prime) count++;
  }
  Atomics.add(new Int32Array(sab), 0, count);
  parentPort.postMessage({ count, tid: threadId });
}
"#;

const NODE_SPAWN_JS: &str = r#"'use strict';
const { spawn, fork } = require('child_process');
if (process.argv[2] === 'child') {
  process.on('message', (m) => {
    process.send({ doubled: m.n * 2, pid: process.pid });
    process.disconnect();
  });
} else {
  const p = spawn('sh', ['-c', 'tr a-z A-Z; echo "stderr of $0" >&2; exit 3', 'kid'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  p.stdin.end('piped through\n');
  p.on('close', (code) => {
    const c = fork(__filename, ['child']);
    let reply = null;
    c.on('message', (m) => { reply = m; });
    c.on('exit', (forkCode) => {
      console.log(JSON.stringify({
        out: out.trim(), err: err.trim(), code,
        doubled: reply && reply.doubled, otherPid: !!reply && reply.pid !== process.pid, forkCode,
      }));
    });
    c.send({ n: 21 });
  });
}
"#;

/// node: several `worker_threads` sharing a SharedArrayBuffer, then
/// `child_process.spawn` with piped stdio and `fork` with an IPC channel.
#[test]
fn node_worker_threads_and_child_process() {
    require_root();
    if !host_has("node") {
        println!("NOTICE: node not found on the host (`which node` failed); skipping node_worker_threads_and_child_process");
        return;
    }
    let ws = Workspace::new("nodewk");
    write_tree(
        ws.path(),
        &[("workers.js", NODE_WORKERS_JS), ("spawn.js", NODE_SPAWN_JS)],
    );
    // pi(200000) = 17984, split over 4 workers.
    assert_eq!(
        ok_in(&ws, "node workers.js"),
        "{\"primes\":17984,\"workers\":4,\"mainTid\":0,\"shared\":17984}\n"
    );
    assert_eq!(
        ok_in(&ws, "node spawn.js"),
        "{\"out\":\"PIPED THROUGH\",\"err\":\"stderr of kid\",\"code\":3,\"doubled\":42,\"otherPid\":true,\"forkCode\":0}\n"
    );
}

/// git beyond the basics: a worktree on its own branch with a commit made
/// inside it, `log --all` seeing both branches, a merge back, and a
/// `--no-local` clone (pack protocol over pipes to upload-pack).
#[test]
fn git_worktree_branch_commit_merge_clone() {
    require_root();
    let ws = Workspace::new("gitwt");
    let out = ok_in(
        &ws,
        "set -e; git init -q -b main repo && cd repo && git config user.email x@y && git config user.name x \
         && echo base > base.txt && git add . && git commit -q -m base \
         && git worktree add -q -b feature ../wt \
         && (cd ../wt && echo feat > feat.txt && git add feat.txt && git commit -q -m 'feature work') \
         && echo more >> base.txt && git commit -q -am 'main work' \
         && git log --all --format='%s' | sort && echo -- \
         && git branch --format='%(refname:short)' && echo -- \
         && git merge -q --no-edit feature && ls && git log --format=%s -1 && echo -- \
         && git worktree remove ../wt && git worktree list | wc -l \
         && cd .. && git clone -q --no-local repo clone && git -C clone log --oneline | wc -l && cat clone/feat.txt \
         && git -C repo fsck --no-progress 2>&1 && echo fsck-ok",
    );
    assert_eq!(
        out,
        "base\nfeature work\nmain work\n--\nfeature\nmain\n--\nbase.txt\nfeat.txt\nMerge branch 'feature'\n--\n1\n4\nfeat\nfsck-ok\n"
    );
    assert!(!ws.path().join("wt").exists(), "worktree not removed");
    // The host's git agrees.
    let host = Command::new("git")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(ws.path().join("clone"))
        .args(["log", "--format=%s", "--first-parent"])
        .output()
        .unwrap();
    assert_eq!(
        text(&host.stdout),
        "Merge branch 'feature'\nmain work\nbase\n",
        "host git: {}",
        text(&host.stderr)
    );
}

/// The Rust toolchain directory (the one holding `bin/cargo`, `bin/rustc`,
/// `lib/`) of a real toolchain, not a rustup proxy; `None` if there is none.
fn rust_toolchain_dir() -> Option<std::path::PathBuf> {
    let real_toolchain = |cargo: std::path::PathBuf| -> Option<std::path::PathBuf> {
        let cargo = std::fs::canonicalize(cargo).ok()?;
        // A rustup proxy is a link to the `rustup` binary.
        if cargo.file_name()? != "cargo" {
            return None;
        }
        let bin = cargo.parent()?;
        let rustc = std::fs::canonicalize(bin.join("rustc")).ok()?;
        if rustc.file_name()? != "rustc" || bin.file_name()? != "bin" {
            return None;
        }
        Some(bin.parent()?.to_path_buf())
    };
    // The cargo running this test (set at run time and at build time), then
    // rustup's answer, then whatever is on PATH.
    let candidates = std::env::var_os("CARGO")
        .map(Into::into)
        .into_iter()
        .chain(option_env!("CARGO").map(Into::into))
        .chain(
            Command::new("rustup")
                .args(["which", "cargo"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| text(&o.stdout).trim().into()),
        )
        .chain(
            Command::new("which")
                .arg("cargo")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| text(&o.stdout).trim().into()),
        );
    candidates.into_iter().find_map(real_toolchain)
}

/// `cargo build` and `cargo test` of a small crate with a build script,
/// offline, with the host's toolchain granted read-only and an empty
/// writable `CARGO_HOME`; then the produced binary runs.
#[test]
fn cargo_build_offline_with_build_script() {
    require_root();
    let Some(tc) = rust_toolchain_dir() else {
        println!("NOTICE: no Rust toolchain found on the host ($CARGO, `rustup which cargo`, `which cargo`); skipping cargo_build_offline_with_build_script");
        return;
    };
    let ws = Workspace::new("cargo");
    write_tree(
        ws.path(),
        &[
            (
                "hello/Cargo.toml",
                "[package]\nname = \"sbx-hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
            ),
            (
                "hello/build.rs",
                r#"use std::{env, fs, path::Path};
fn main() {
    let out = env::var("OUT_DIR").unwrap();
    let squares: u64 = (1..=10u64).map(|i| i * i).sum();
    fs::write(Path::new(&out).join("gen.rs"), format!("pub const SQUARES: u64 = {squares};\n")).unwrap();
    println!("cargo:rustc-env=BUILT_BY=build.rs");
    println!("cargo:rerun-if-changed=build.rs");
}
"#,
            ),
            (
                "hello/src/main.rs",
                r#"include!(concat!(env!("OUT_DIR"), "/gen.rs"));

fn checksum(s: &str) -> u32 {
    s.bytes().map(u32::from).sum()
}

fn main() {
    let threads: Vec<_> = (0..4).map(|i| std::thread::spawn(move || i * 10)).collect();
    let sum: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    println!("squares={} built_by={} threads={} checksum={}", SQUARES, env!("BUILT_BY"), sum, checksum("abc"));
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksum_works() {
        assert_eq!(super::checksum("abc"), 294);
    }
}
"#,
            ),
        ],
    );
    let cargo_home = ws.path().join("cargo-home");
    std::fs::create_dir(&cargo_home).unwrap();
    let tc_bin = tc.join("bin");
    let mut fs = Fs::minimal().rw(ws.path());
    if !tc.starts_with("/usr") {
        fs = fs.ro(&tc);
    }
    let sb = Sandbox::new()
        .fs(fs)
        .cwd(ws.path().join("hello"))
        .env("CARGO_HOME", cargo_home.to_str().unwrap())
        .env(
            "PATH",
            format!(
                "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                tc_bin.display()
            ),
        )
        .env("CARGO_TERM_COLOR", "never")
        .timeout(std::time::Duration::from_secs(120));
    let cargo = tc_bin.join("cargo");
    let out = ok_with(
        sb,
        &format!(
            "set -e; {cargo} build --offline -q && ./target/debug/sbx-hello \
             && {{ {cargo} test --offline -q >test.log 2>&1 || {{ cat test.log; exit 1; }}; }} \
             && grep '^test result' test.log",
            cargo = cargo.display()
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("squares=385 built_by=build.rs threads=60 checksum=294"),
        "{out}"
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("test result: ok. 1 passed; 0 failed")),
        "{out}"
    );
    assert!(ws.path().join("hello/target/debug/sbx-hello").is_file());
    assert!(ws.path().join("hello/Cargo.lock").is_file());
}

/// `make -j2` building a C program split over several files (header
/// dependencies tracked with -MMD), a recursive sub-make sharing the
/// jobserver, and two targets that can only finish if make really runs them
/// at the same time.
#[test]
fn make_parallel_c_build() {
    require_root();
    let ws = Workspace::new("makej");
    write_tree(
        ws.path(),
        &[
            (
                "include/calc.h",
                "#ifndef CALC_H\n#define CALC_H\nint add(int a, int b);\nint mul(int a, int b);\ndouble root(double x);\n#endif\n",
            ),
            ("src/add.c", "#include \"calc.h\"\nint add(int a, int b) { return a + b; }\n"),
            ("src/mul.c", "#include \"calc.h\"\nint mul(int a, int b) { return a * b; }\n"),
            ("src/root.c", "#include <math.h>\n#include \"calc.h\"\ndouble root(double x) { return sqrt(x); }\n"),
            (
                "src/main.c",
                "#include <stdio.h>\n#include \"calc.h\"\nint main(void) { printf(\"calc: %d %d %.2f\\n\", add(2, 3), mul(4, 5), root(2.0)); return 0; }\n",
            ),
            (
                "Makefile",
                "CFLAGS = -O1 -Wall -Werror -Iinclude -MMD -MP\n\
                 SRCS = $(sort $(wildcard src/*.c))\n\
                 OBJS = $(SRCS:src/%.c=build/%.o)\n\
                 \n\
                 all: calc sync-a sync-b sub\n\
                 \n\
                 calc: $(OBJS)\n\
                 \t$(CC) -o $@ $^ -lm\n\
                 \n\
                 build/%.o: src/%.c | build\n\
                 \t$(CC) $(CFLAGS) -c -o $@ $<\n\
                 \n\
                 build:\n\
                 \tmkdir -p $@\n\
                 \n\
                 # Each waits (up to WAIT x 50 ms) for the other to have started:\n\
                 # only -jN with N >= 2 finishes.\n\
                 WAIT = 200\n\
                 sync-a:\n\
                 \t@touch a.started; i=0; while [ ! -e b.started ] && [ $$i -lt $(WAIT) ]; do sleep 0.05; i=$$((i+1)); done; test -e b.started\n\
                 sync-b:\n\
                 \t@touch b.started; i=0; while [ ! -e a.started ] && [ $$i -lt $(WAIT) ]; do sleep 0.05; i=$$((i+1)); done; test -e a.started\n\
                 \n\
                 sub:\n\
                 \t+@$(MAKE) -C sub\n\
                 \n\
                 .PHONY: all sync-a sync-b sub\n\
                 -include $(OBJS:.o=.d)\n",
            ),
            (
                "sub/Makefile",
                "out.txt:\n\t@echo \"level=$(MAKELEVEL) $(findstring jobserver,$(MAKEFLAGS))\" > $@\n",
            ),
        ],
    );
    let out = ok_in(
        &ws,
        "set -e; make -j2 -s && ./calc && cat sub/out.txt \
         && make -q calc && echo up-to-date \
         && touch include/calc.h && if make -q calc; then echo not-stale; else echo stale; fi \
         && make -j2 -s calc && ./calc",
    );
    assert_eq!(
        out,
        "calc: 5 20 1.41\nlevel=1 jobserver\nup-to-date\nstale\ncalc: 5 20 1.41\n"
    );
    for o in ["add", "mul", "root", "main"] {
        assert!(ws.path().join(format!("build/{o}.o")).is_file(), "{o}.o");
        assert!(ws.path().join(format!("build/{o}.d")).is_file(), "{o}.d");
    }
    // Without parallelism the rendezvous fails: the control works.
    std::fs::remove_file(ws.path().join("a.started")).unwrap();
    std::fs::remove_file(ws.path().join("b.started")).unwrap();
    let serial = run_in(&ws, "make -j1 -s WAIT=10 sync-a sync-b 2>&1");
    assert!(
        !serial.status.success(),
        "sync-a finished without sync-b running beside it: {}",
        text(&serial.stdout)
    );
}

const PYTEST_OK: &str = r#"import os

import pytest


@pytest.fixture
def numbers():
    return [3, 1, 2]


def test_sorted(numbers):
    assert sorted(numbers) == [1, 2, 3]


def test_tmp_path(tmp_path):
    p = tmp_path / "hello.txt"
    p.write_text("hi")
    assert p.read_text() == "hi"
    assert str(tmp_path).startswith("/tmp/")


@pytest.mark.parametrize("x,y", [(1, 2), (2, 4)])
def test_double(x, y):
    assert x * 2 == y


def test_capsys_monkeypatch(capsys, monkeypatch):
    monkeypatch.setenv("STOCKADE_T", "v")
    print(os.environ["STOCKADE_T"])
    assert capsys.readouterr().out == "v\n"
"#;

const PYTEST_FAIL: &str = r#"def test_passes():
    assert True


def test_fails():
    assert 1 + 1 == 3
"#;

/// pytest (Debian's python3-pytest): fixtures, tmp_path, parametrize,
/// capsys/monkeypatch; a failing test is reported as such, and the cache
/// (written to the workspace) drives `--lf`.
#[test]
fn pytest_runs() {
    require_root();
    if !Path::new("/usr/lib/python3/dist-packages/pytest").is_dir() {
        println!("NOTICE: Debian's python3-pytest is not installed on the host (apt-get install python3-pytest); skipping pytest_runs");
        return;
    }
    let ws = Workspace::new("pytest");
    write_tree(
        ws.path(),
        &[
            ("ok/test_ok.py", PYTEST_OK),
            ("bad/test_bad.py", PYTEST_FAIL),
        ],
    );
    let out = ok_in(
        &ws,
        "python3 -c 'import pytest; print(pytest.__file__)' && python3 -m pytest -q -p no:cacheprovider ok",
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("/usr/lib/python3/dist-packages/pytest/__init__.py"),
        "{out}"
    );
    let last = out.lines().last().unwrap_or_default();
    assert!(last.starts_with("5 passed in "), "{out}");
    assert!(!ws.path().join(".pytest_cache").exists());

    // A failing run: exit status 1, the failure named; then --lf from the cache.
    let bad = run_in(&ws, "python3 -m pytest -q -o cache_dir=.pcache bad");
    let bad_out = text(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{bad_out}{}", text(&bad.stderr));
    assert!(
        bad_out.contains("FAILED bad/test_bad.py::test_fails"),
        "{bad_out}"
    );
    assert!(
        bad_out
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("1 failed, 1 passed in ")),
        "{bad_out}"
    );
    assert!(ws.path().join(".pcache/v/cache/lastfailed").is_file());
    let lf = run_in(&ws, "python3 -m pytest -q -o cache_dir=.pcache --lf bad");
    let lf_out = text(&lf.stdout);
    assert_eq!(lf.status.code(), Some(1), "{lf_out}{}", text(&lf.stderr));
    assert!(
        lf_out
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("1 failed in ")),
        "--lf should rerun only the failure: {lf_out}"
    );
}
