"""Side-by-side cost of the access and syscall rings (issue 4's benchmark).

(b) a raw syscall loop bare, in bwrap without and with stockade's filter, and in
    stockade (filter + Landlock): ns per call and the ratio to bare;
(c) real work (find /usr, git status on a large tree, a small parallel
    compile) in stockade vs bwrap running the same seccomp filter: median wall
    time and the ratio.
Run by benches/rings.sh, which builds the inputs and passes their paths.
"""
import json
import os
import statistics
import subprocess
import sys
import time

STOCKADE, FILTER, LOOP, WORK = sys.argv[1:5]
REPS = int(os.environ.get("RINGS_REPS", "7"))
CALLS = os.environ.get("RINGS_CALLS", "4000000")


def bwrap(seccomp, binds=()):
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr"]
    for d in ("bin", "lib", "lib64", "sbin"):
        p = "/" + d
        if os.path.islink(p):
            argv += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            argv += ["--ro-bind", p, p]
    argv += ["--ro-bind", "/etc", "/etc", "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"]
    for kind, path in binds:
        argv += ["--bind" if kind == "rw" else "--ro-bind", path, path]
    if seccomp:
        argv += ["--seccomp", "3"]
    return argv


def stockade(binds=()):
    argv = [STOCKADE, "run"]
    for kind, path in binds:
        argv += ["--" + kind, path]
    return argv + ["--"]


def run(argv, cwd=None, seccomp=False):
    if seccomp:
        # bwrap reads the program from fd 3.
        argv = ["sh", "-c", 'exec "$@" 3<"$0"', FILTER] + argv
    t = time.perf_counter()
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(argv)}\n{out.stderr}")
    return out.stdout, dt


def loop_bench():
    rows = []
    bindir = os.path.dirname(LOOP)
    for call in ("getppid", "ioctl"):
        cmd = [LOOP, call, CALLS]
        variants = [
            ("bare", lambda: run(cmd)),
            ("bwrap", lambda: run(bwrap(False, [("ro", bindir)]) + cmd)),
            ("bwrap+filter", lambda: run(bwrap(True, [("ro", bindir)]) + cmd, seccomp=True)),
            ("stockade", lambda: run(stockade([("ro", bindir)]) + cmd)),
        ]
        # Round-robin over the variants so drift and other load hit all alike.
        samples = {name: [] for name, _ in variants}
        for _ in range(REPS):
            for name, fn in variants:
                samples[name].append(float(fn()[0]))
        res = {name: statistics.median(v) for name, v in samples.items()}
        rows.append((call, res))
    print(f"\n(b) syscall loop, {CALLS} calls, median of {REPS}: ns/call (ratio to bare)")
    print(f"{'call':10} " + " ".join(f"{n:>20}" for n in rows[0][1]))
    for call, res in rows:
        base = res["bare"]
        print(f"{call:10} " + " ".join(f"{v:10.1f} ({v / base:5.2f}x)" for v in res.values()))
    return rows


def work_bench():
    repo = os.path.join(WORK, "repo")
    build = os.path.join(WORK, "build")
    jobs = [
        ("find /usr", [], ["sh", "-c", "find /usr | wc -l"], None),
        ("git status (large tree)", [("rw", repo)],
         ["git", "-C", repo, "status", "--porcelain"], None),
        ("make -j2 (8 C files)", [("rw", build)],
         ["sh", "-c", f"make -s -C {build} clean >/dev/null && make -s -j2 -C {build}"], None),
    ]
    rows = []
    for name, binds, cmd, cwd in jobs:
        variants = [
            ("bare", lambda: cmd, False),
            ("bwrap+filter", lambda: bwrap(True, binds) + cmd, True),
            ("stockade", lambda: stockade(binds) + cmd, False),
        ]
        for _, argv_fn, sc in variants:
            run(argv_fn(), cwd=cwd, seccomp=sc)  # warm caches
        samples = {v: [] for v, _, _ in variants}
        for _ in range(REPS):
            for variant, argv_fn, sc in variants:
                samples[variant].append(run(argv_fn(), cwd=cwd, seccomp=sc)[1])
        res = {v: statistics.median(x) for v, x in samples.items()}
        rows.append((name, res))
    print(f"\n(c) real work, median wall of {REPS} (ms); stockade vs bwrap with the same filter")
    print(f"{'job':26} {'bare':>9} {'bwrap+filter':>13} {'stockade':>9} {'ratio':>7}")
    for name, r in rows:
        print(f"{name:26} {r['bare'] * 1e3:9.1f} {r['bwrap+filter'] * 1e3:13.1f} "
              f"{r['stockade'] * 1e3:9.1f} {r['stockade'] / r['bwrap+filter']:6.3f}x")
    return rows


if __name__ == "__main__":
    loop = loop_bench()
    work = work_bench()
    if os.environ.get("RINGS_JSON"):
        with open(os.environ["RINGS_JSON"], "w") as f:
            json.dump({"loop": loop, "work": work}, f, indent=1)
