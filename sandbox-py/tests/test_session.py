"""Warm sessions: one sandbox, many commands; closed means gone."""
import pytest

import stockade
from conftest import host_processes, marker_sleep, wait_until


def test_session_runs_commands_in_one_sandbox():
    with stockade.Sandbox().session() as s:
        assert s.pid > 0
        r1 = s.run(["sh", "-c", "echo one > /tmp/shared; echo ok"])
        assert r1.exit_code == 0 and r1.stdout == b"ok\n"
        assert s.run(["cat", "/tmp/shared"]).stdout == b"one\n"  # /tmp persists
        assert s.run("exit 3", shell=True).exit_code == 3
        r4 = s.run(["sleep", "30"], timeout=0.5)
        assert r4.timed_out and r4.exit_code == 124
        assert s.run(["echo", "after"]).stdout == b"after\n"
    with pytest.raises(stockade.SandboxIOError, match="closed"):
        s.run(["true"])


def test_sessions_are_isolated_from_each_other():
    sb = stockade.Sandbox()
    with sb.session() as a, sb.session() as b:
        a.run(["sh", "-c", "echo a > /tmp/mine"])
        r = b.run(["cat", "/tmp/mine"])
        assert r.exit_code == 1 and b"No such file" in r.stderr


def test_session_containment():
    with stockade.Sandbox().session() as s:
        r = s.run(["ls", "/root"])
        assert r.exit_code == 2 and b"No such file or directory" in r.stderr
        r = s.run(["sh", "-c", "echo x > /etc/x"])
        assert r.exit_code == 2 and b"Read-only file system" in r.stderr


def test_closing_a_session_kills_what_runs_in_it():
    length = marker_sleep(8)
    s = stockade.Sandbox().session()
    p = s.spawn(["sleep", length])
    wait_until(lambda: host_processes(f"sleep {length}"), "sleep runs")
    s.close()
    assert host_processes(f"sleep {length}") == []
    # The command's status went with its session: waiting says so.
    with pytest.raises(stockade.HelperError, match="session has ended"):
        p.wait()


def test_session_starts_lazily():
    s = stockade.Sandbox().session()
    assert "not started" in repr(s)
    assert s.run(["echo", "x"]).stdout == b"x\n"
    assert "open" in repr(s)
    s.close()
    s.close()  # idempotent


def test_a_background_process_does_not_hold_the_caller():
    # The command's leader ends at once; the sleep it left keeps stdout
    # open. run returns with what was written, the sleep lives on in the
    # session until it closes.
    length = marker_sleep(9)
    with stockade.Sandbox().session() as s:
        r = s.run(["sh", "-c", f"sleep {length} & echo leader-done"], timeout=30)
        assert r.exit_code == 0 and r.stdout == b"leader-done\n" and not r.timed_out
        wait_until(lambda: len(host_processes(f"sleep {length}")) == 1, "the sleep lives on")
        r = s.run(["sh", "-c", "head -c 300000 /dev/zero & exit 0"], input=b"x" * 200_000)
        assert r.exit_code == 0
    assert host_processes(f"sleep {length}") == []
