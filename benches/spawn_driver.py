#!/usr/bin/env python3
"""Spawn-latency driver for benches/spawn.sh.

Times cold spawns of `/bin/true` for several variants, interleaved: every round
runs each variant once, in a fresh random order, so drift (thermal, page cache,
other load) hits all variants alike.

Two kinds of variant, described by a JSON config (see spawn.sh):
  {"name": "bare", "argv": ["/bin/true"], "allow_fail": false}
      timed here: perf_counter_ns() around os.posix_spawn + os.waitpid
      (vfork semantics: the driver's own size does not matter).
  {"name": "api", "serve": ["/path/api-spawn", "--serve"], "env": {...}}
      a long-lived host process; each sample is one line written to its stdin,
      it runs one `Sandbox::new().command(["/bin/true"]).status()` and answers
      the in-process latency in ns, which is what is recorded.

Usage: spawn_driver.py CONFIG.json OUT.json
Prints a table to stdout and writes all samples and statistics to OUT.json.
"""

import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[min(rank, len(sorted_vals)) - 1]


class SpawnVariant:
    def __init__(self, spec, base_env):
        self.name = spec["name"]
        self.argv = spec["argv"]
        self.env = dict(base_env, **spec.get("env", {}))
        self.allow_fail = spec.get("allow_fail", False)
        devnull = os.open(os.devnull, os.O_RDWR)
        self.file_actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
        self._devnull = devnull

    def sample(self):
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(self.argv[0], self.argv, self.env, file_actions=self.file_actions)
        _, status = os.waitpid(pid, 0)
        t1 = time.perf_counter_ns()
        if status != 0 and not self.allow_fail:
            raise RuntimeError(f"{self.name}: {self.argv} ended with wait status {status:#x}")
        return t1 - t0

    def close(self):
        os.close(self._devnull)


class ServeVariant:
    def __init__(self, spec, base_env):
        self.name = spec["name"]
        env = dict(base_env, **spec.get("env", {}))
        self.proc = subprocess.Popen(
            spec["serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1
        )

    def sample(self):
        self.proc.stdin.write("x\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: server exited (status {self.proc.poll()})")
        line = line.strip()
        if line.startswith("ERR"):
            raise RuntimeError(f"{self.name}: {line}")
        return int(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def cpu_jiffies():
    """(total, idle) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]


def stats(samples):
    s = sorted(samples)
    return {
        "n": len(s),
        "p50_ns": pct(s, 50),
        "p95_ns": pct(s, 95),
        "p99_ns": pct(s, 99),
        "min_ns": s[0],
        "max_ns": s[-1],
        "mean_ns": round(statistics.fmean(s)),
        "stdev_ns": round(statistics.pstdev(s)),
    }


def ms(ns):
    return f"{ns / 1e6:8.3f}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    warmup, iters = int(cfg["warmup"]), int(cfg["iters"])
    label = cfg.get("label", "")
    base_env = {k: v for k, v in os.environ.items()}

    variants = []
    for spec in cfg["variants"]:
        variants.append(ServeVariant(spec, base_env) if "serve" in spec else SpawnVariant(spec, base_env))

    samples = {v.name: [] for v in variants}
    rng = random.Random(cfg.get("seed", 12345))
    gc.disable()
    j0, t_cpu0 = cpu_jiffies(), os.times()
    started = time.time()
    try:
        for rnd in range(warmup + iters):
            order = variants[:]
            rng.shuffle(order)
            for v in order:
                ns = v.sample()
                if rnd >= warmup:
                    samples[v.name].append(ns)
    finally:
        gc.enable()
        for v in variants:
            v.close()
    elapsed = time.time() - started
    j1, t_cpu1 = cpu_jiffies(), os.times()
    ncpu = os.cpu_count()
    busy_pct = 100.0 * (1 - (j1[1] - j0[1]) / max(1, j1[0] - j0[0]))
    # CPU of this driver and its reaped children (the api servers were reaped above);
    # kernel work done on our behalf in kworkers (e.g. netns teardown) is not in it.
    ours = sum(t_cpu1[i] - t_cpu0[i] for i in range(4))
    ours_pct = 100.0 * ours / max(1e-9, elapsed * ncpu)

    res = {name: stats(s) for name, s in samples.items()}
    bare_p50 = res["bare"]["p50_ns"] if "bare" in res else None
    bwrap_p50 = res["bwrap"]["p50_ns"] if "bwrap" in res else None
    for name, r in res.items():
        r["x_bwrap_p50"] = round(r["p50_ns"] / bwrap_p50, 3) if bwrap_p50 else None
        r["x_bare_p50"] = round(r["p50_ns"] / bare_p50, 3) if bare_p50 else None

    targets = []
    for name, r in res.items():
        t = next((spec.get("target_x_bwrap") for spec in cfg["variants"] if spec["name"] == name), None)
        if t is not None and bwrap_p50:
            ok = r["x_bwrap_p50"] <= t
            r["target_x_bwrap"] = t
            r["target_met"] = ok
            targets.append((name, t, r["x_bwrap_p50"], ok))

    uid = os.geteuid()
    print(f"\n== {label} (uid {uid}) : {iters} measured + {warmup} warmup rounds, interleaved, {elapsed:.1f}s ==")
    print(f"host CPU busy during the run: {busy_pct:.0f}% of {ncpu} CPUs (this benchmark's spawns: >= {ours_pct:.0f}%)")
    hdr = f"{'variant':<26}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'min ms':>9}{'p50/bwrap':>11}{'p50/bare':>10}"
    print(hdr)
    print("-" * len(hdr))
    for v in variants:
        r = res[v.name]
        xb = f"{r['x_bwrap_p50']:.3f}" if r["x_bwrap_p50"] is not None else "-"
        xr = f"{r['x_bare_p50']:.1f}" if r["x_bare_p50"] is not None else "-"
        print(f"{v.name:<26}{ms(r['p50_ns'])} {ms(r['p95_ns'])} {ms(r['mean_ns'])} {ms(r['min_ns'])}{xb:>11}{xr:>10}")
    for name, t, x, ok in targets:
        print(f"target {name}: p50 <= {t}x bwrap p50 -> {x:.3f}x  {'MET' if ok else 'MISSED'}")

    out = {
        "label": label,
        "uid": uid,
        "warmup": warmup,
        "iters": iters,
        "elapsed_s": round(elapsed, 2),
        "host_busy_pct": round(busy_pct, 1),
        "bench_cpu_pct_lower_bound": round(ours_pct, 1),
        "variants": [
            {k: v for k, v in spec.items() if k != "env"} | {"env": spec.get("env", {})} for spec in cfg["variants"]
        ],
        "results": res,
        "samples_ns": samples,
    }
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
