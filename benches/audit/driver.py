"""Side-by-side cost of recording refused syscalls; run by benches/audit.sh."""
import os
import shutil
import statistics
import subprocess
import sys

STOCKADE, FILTER, LOOP = sys.argv[1:4]
REPS = int(os.environ.get("AUDIT_REPS", "7"))
CALLS = {"getppid": 4_000_000, "ioctl": 4_000_000, "mount": 20_000}


def bwrap():
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr"]
    for d in ("bin", "lib", "lib64", "sbin"):
        p = "/" + d
        if os.path.islink(p):
            argv += ["--symlink", os.readlink(p), p]
    argv += ["--ro-bind", os.path.dirname(LOOP), os.path.dirname(LOOP),
             "--dev", "/dev", "--proc", "/proc", "--seccomp", "3"]
    return ["sh", "-c", 'exec "$@" 3<"$0"', FILTER] + argv


VARIANTS = {
    "bare": [],
    # The CLI records events only when asked to write them somewhere.
    "stockade, refusals recorded": [STOCKADE, "run", "--events", "/dev/null",
                                    "--ro", os.path.dirname(LOOP), "--"],
    "stockade, not recorded": [STOCKADE, "run", "--events", "/dev/null", "--no-syscall-events",
                               "--ro", os.path.dirname(LOOP), "--"],
}
if shutil.which("bwrap"):
    VARIANTS["bwrap + stockade's filter"] = bwrap()


def ns_per_call(prefix, mode):
    out = subprocess.run(prefix + [LOOP, mode, str(CALLS[mode])],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {prefix} {mode}: {out.stderr}")
    return float(out.stdout.strip())


def main():
    print(f"ns per syscall, median of {REPS} interleaved runs")
    for mode in CALLS:
        samples = {name: [] for name in VARIANTS}
        for _ in range(REPS):
            for name, prefix in VARIANTS.items():
                samples[name].append(ns_per_call(prefix, mode))
        med = {name: statistics.median(v) for name, v in samples.items()}
        print(f"\n{mode} ({CALLS[mode]} calls)")
        for name, v in med.items():
            print(f"  {name:30s} {v:10.1f} ns   x{v / med['bare']:.3f} bare")
        on, off = med["stockade, refusals recorded"], med["stockade, not recorded"]
        print(f"  recorded / not recorded:       x{on / off:.3f}")


main()
