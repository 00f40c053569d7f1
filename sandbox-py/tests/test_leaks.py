"""Nothing leaks: 500 runs leave no descriptors, threads or processes."""
import os

import stockade
from conftest import child_pids, open_fds, wait_until


def os_threads() -> int:
    """Threads of this process, Rust's included."""
    return len(os.listdir("/proc/self/task"))


def test_nothing_leaks_after_500_runs():
    sb = stockade.Sandbox()
    for _ in range(5):  # warm up lazily created state (runtimes, caches)
        sb.run(["true"])
    fds, threads = open_fds(), os_threads()
    wait_until(lambda: not child_pids(), "no children before")
    for i in range(500):
        r = sb.run(["sh", "-c", f"echo {i}"], input=b"x")
        assert r.stdout == f"{i}\n".encode()
    wait_until(lambda: not child_pids(), "every helper reaped")
    wait_until(lambda: os_threads() <= threads, "no threads left")
    assert open_fds() == fds


def test_spawn_and_sessions_do_not_leak():
    sb = stockade.Sandbox()
    sb.spawn(["true"]).communicate()
    with sb.session() as s:
        s.run(["true"])
    fds = open_fds()
    for _ in range(50):
        p = sb.spawn(["cat"])
        p.communicate(b"x")
        p.stdout.close()
        p.stderr.close()
        with sb.session() as s:
            s.run(["true"])
    wait_until(lambda: not child_pids(), "every helper reaped")
    assert open_fds() == fds
