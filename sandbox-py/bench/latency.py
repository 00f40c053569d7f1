"""Per-call latency of `sb.run(["/bin/true"])` against
`subprocess.run(["/bin/true"])` in the same process, side by side.

    pip install ./sandbox-py && python sandbox-py/bench/latency.py [N]

Prints p50/mean in ms and the ratio to subprocess for: a fresh sandbox per
call (`Sandbox.run`), the same with `Sandbox.prewarm()`, and a warm
session's `Session.run`. Rounds interleave the variants so that host noise
hits them alike. The "paced" rows wait 20 ms between calls, as an agent's
tool calls are spaced by model turns, so background preparation is not
counted against the next call.
"""
import statistics
import subprocess
import sys
import time

import stockade

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def timed(fn, pause=0.0):
    if pause:
        time.sleep(pause)
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main():
    sb = stockade.Sandbox()
    true = lambda: subprocess.run(["/bin/true"], check=True)  # noqa: E731
    # Cold first: prewarm() is process-wide once enabled.
    report({"subprocess.run": true, "Sandbox.run (cold)": lambda: sb.run(["/bin/true"])})
    sb.prewarm()
    session = stockade.Sandbox().session().open()
    report({
        "subprocess.run": true,
        "Sandbox.run + prewarm": lambda: sb.run(["/bin/true"]),
        "Session.run": lambda: session.run(["/bin/true"]),
    })
    session.close()


def report(variants):
    for fn in variants.values():  # warm-up
        for _ in range(10):
            fn()
    samples = {k: [] for k in variants}
    paced = {k: [] for k in variants}
    for i in range(N):
        for k, fn in variants.items():
            samples[k].append(timed(fn))
        if i % 3 == 0:
            for k, fn in variants.items():
                paced[k].append(timed(fn, pause=0.02))
    base = statistics.median(samples["subprocess.run"])
    base_paced = statistics.median(paced["subprocess.run"])
    print(f"{'variant':28} {'p50 ms':>8} {'mean ms':>8} {'x subprocess':>12}   (paced p50, x)")
    for k in variants:
        p50 = statistics.median(samples[k])
        pp50 = statistics.median(paced[k])
        print(f"{k:28} {p50:8.3f} {statistics.fmean(samples[k]):8.3f} {p50 / base:12.2f}"
              f"   ({pp50:.3f}, {pp50 / base_paced:.2f})")


if __name__ == "__main__":
    main()
