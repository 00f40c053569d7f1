"""Shared fixtures of the Python binding's tests.

They run as root in CI, like the Rust suites; `test_unprivileged.py` also
runs the binding as the unprivileged user `stockade-test`.
"""
import os
import shutil
import tempfile
import time

import pytest


@pytest.fixture
def workdir():
    """A scratch directory outside /tmp: the sandbox's Landlock rules grant
    writes below /tmp, so containment checks use a path elsewhere."""
    d = tempfile.mkdtemp(prefix="stockade-py-", dir="/var/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def host_processes(needle: str) -> list:
    """Host pids whose command line is exactly `needle` split on spaces."""
    want = needle.replace(" ", "\0").encode() + b"\0"
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == want:
                    found.append(int(pid))
        except OSError:
            pass
    return found


def wait_until(predicate, what: str, limit: float = 10.0) -> None:
    """Poll `predicate` until true; fail naming `what` after `limit` s."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"still waiting: {what}"
        time.sleep(0.02)


def open_fds() -> set:
    return set(os.listdir("/proc/self/fd"))


def child_pids() -> set:
    """This process's children (from /proc/*/stat)."""
    me = os.getpid()
    kids = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me:
            kids.add(int(pid))
    return kids


def marker_sleep(tag: int) -> str:
    """A `sleep` length no other process on the host uses."""
    return f"{800 + tag}.{os.getpid() % 1_000_000:06d}"
