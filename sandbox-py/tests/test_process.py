"""spawn/Process: the subprocess.Popen conventions."""
import os
import subprocess

import pytest

import stockade
from conftest import host_processes, marker_sleep, wait_until


def test_communicate_with_input():
    p = stockade.Sandbox().spawn(["sh", "-c", "tr a-z A-Z; echo done >&2; exit 3"])
    assert p.pid > 0
    out, err = p.communicate(b"hello")
    assert out == b"HELLO" and err == b"done\n"
    assert p.returncode == 3 and p.exit_code == 3


def test_streaming_stdin_and_stdout():
    p = stockade.Sandbox().spawn(["sh", "-c", "while read l; do echo got:$l; done"])
    for word in (b"one", b"two"):
        p.stdin.write(word + b"\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"got:" + word + b"\n"
    p.stdin.close()
    assert p.wait() == 0
    assert p.stdout.read() == b""


def test_wait_timeout_raises_and_the_process_runs_on():
    p = stockade.Sandbox().spawn(["sleep", "30"])
    with pytest.raises(stockade.TimeoutExpired) as e:
        p.wait(timeout=0.2)
    assert isinstance(e.value, subprocess.TimeoutExpired)
    assert p.poll() is None
    p.kill()
    assert p.wait() == -9
    assert p.signal == 9 and p.exit_code == 137


def test_terminate_lets_the_command_clean_up():
    p = stockade.Sandbox().spawn(["sh", "-c", "trap 'echo cleanup; exit 5' TERM; echo ready; while :; do sleep 0.05; done"])
    assert p.stdout.readline() == b"ready\n"
    p.terminate()
    assert p.stdout.readline() == b"cleanup\n"
    assert p.wait() == 5


def test_kill_from_another_thread_while_waiting():
    import threading

    length = marker_sleep(5)
    p = stockade.Sandbox().spawn(["sleep", length])
    wait_until(lambda: host_processes(f"sleep {length}"), "sleep runs")
    threading.Timer(0.2, p.kill).start()
    assert p.wait() == -9
    assert host_processes(f"sleep {length}") == []


def test_communicate_timeout_then_finish():
    p = stockade.Sandbox().spawn(["sh", "-c", "echo early; sleep 1; echo late"])
    with pytest.raises(stockade.TimeoutExpired):
        p.communicate(timeout=0.2)
    out, err = p.communicate()
    assert out == b"early\nlate\n" and err == b""
    assert p.returncode == 0


def test_devnull_inherit_and_files(workdir):
    path = os.path.join(workdir, "out.txt")
    with open(path, "wb") as f:
        p = stockade.Sandbox().spawn(["sh", "-c", "echo to-file; echo to-null >&2"],
                                     stdin=stockade.DEVNULL, stdout=f, stderr=stockade.DEVNULL)
        assert p.stdin is None and p.stdout is None and p.stderr is None
        assert p.wait() == 0
    with open(path, "rb") as f:
        assert f.read() == b"to-file\n"


def test_dropping_a_process_kills_its_sandbox():
    import gc

    length = marker_sleep(6)
    p = stockade.Sandbox().spawn(["sleep", length])
    wait_until(lambda: host_processes(f"sleep {length}"), "sleep runs")
    del p
    gc.collect()
    wait_until(lambda: not host_processes(f"sleep {length}"), "the sandbox died with its handle")


def test_context_manager_kills_on_exit():
    length = marker_sleep(7)
    with stockade.Sandbox().spawn(["sleep", length]) as p:
        wait_until(lambda: host_processes(f"sleep {length}"), "sleep runs")
    assert p.returncode == -9
    assert host_processes(f"sleep {length}") == []


def test_process_timeout_from_the_policy():
    p = stockade.Sandbox().spawn(["sleep", "30"], timeout=0.3)
    p.wait()
    assert p.timed_out and p.exit_code == 124


def test_session_spawn():
    with stockade.Sandbox().session() as s:
        p = s.spawn(["sh", "-c", "cat > /tmp/in; wc -c < /tmp/in"])
        out, _ = p.communicate(b"12345")
        assert out.strip() == b"5"
        assert s.run(["cat", "/tmp/in"]).stdout == b"12345"
