"""Basic checks of the Python binding: positive controls, containment, exit
codes, timeouts, policy errors. Needs a host where the Rust test suite passes
(user namespaces etc.); run with `pytest sandbox-py/tests`."""
import os
import tempfile

import pytest

import stockade


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield d


def test_echo_positive_control():
    r = stockade.Sandbox().run(["echo", "hello from stockade"])
    assert r.exit_code == 0
    assert r.stdout == b"hello from stockade\n"
    assert r.stderr == b""
    assert not r.timed_out
    assert not r.truncated
    assert r.duration > 0


def test_shell_and_input():
    r = stockade.Sandbox().run("read x; echo got:$x; echo err >&2", shell=True, input=b"abc\n")
    assert r.exit_code == 0
    assert r.stdout == b"got:abc\n"
    assert r.stderr == b"err\n"
    assert r.output == b"got:abc\nerr\n"  # stdout then stderr, not interleaved


def test_rw_mount_is_writable(workdir):
    r = stockade.Sandbox(rw=[workdir]).run(["sh", "-c", f"echo inside > {workdir}/f"])
    assert r.exit_code == 0, r.stderr
    with open(os.path.join(workdir, "f")) as f:
        assert f.read() == "inside\n"


def test_cannot_read_root_home():
    # Positive control first: the host has /root.
    assert os.path.isdir("/root")
    r = stockade.Sandbox().run(["ls", "/root"])
    assert r.exit_code != 0


def test_cannot_write_etc():
    r = stockade.Sandbox().run(["sh", "-c", "echo x > /etc/stockade-test"])
    assert r.exit_code != 0
    assert not os.path.exists("/etc/stockade-test")


def test_nonzero_exit_code():
    r = stockade.Sandbox().run(["sh", "-c", "exit 7"])
    assert r.exit_code == 7


def test_timeout():
    r = stockade.Sandbox().run(["sleep", "30"], timeout=0.5)
    assert r.timed_out
    assert r.exit_code == 124
    assert r.duration < 10


def test_policy_timeout():
    r = stockade.Sandbox(timeout=0.5).run(["sleep", "30"])
    assert r.timed_out


def test_max_output_truncates():
    r = stockade.Sandbox().run(["sh", "-c", "yes | head -c 100000"], max_output=1000)
    assert r.exit_code == 0
    assert len(r.stdout) == 1000
    assert r.truncated


def test_invalid_memory_is_policy_error():
    with pytest.raises(stockade.PolicyError) as e:
        stockade.Sandbox(memory="lots")
    assert e.value.layer == "policy"
    assert isinstance(e.value, stockade.SandboxError)


def test_invalid_net_is_policy_error():
    with pytest.raises(stockade.PolicyError):
        stockade.Sandbox(net="everything")


def test_nonexistent_path_is_error():
    with pytest.raises(stockade.SandboxError):
        stockade.Sandbox(ro=["/nonexistent/stockade/path"]).run(["true"])


def test_unknown_keyword_is_type_error():
    with pytest.raises(TypeError):
        stockade.Sandbox(memroy="1G")


def test_program_not_found():
    with pytest.raises(stockade.NotFoundError) as e:
        stockade.Sandbox().run(["/no/such/program"])
    assert e.value.layer == "exec"


def test_from_toml(workdir):
    p = os.path.join(workdir, "policy.toml")
    with open(p, "w") as f:
        f.write('env = { GREETING = "hi" }\ntimeout = 5\n')
    r = stockade.Sandbox.from_toml(p).run(["sh", "-c", "echo $GREETING"])
    assert r.stdout == b"hi\n"


def test_from_toml_unknown_key(workdir):
    p = os.path.join(workdir, "policy.toml")
    with open(p, "w") as f:
        f.write("bogus = 1\n")
    with pytest.raises(stockade.PolicyError):
        stockade.Sandbox.from_toml(p)


def test_env():
    r = stockade.Sandbox(env={"CI": "1"}).run(["sh", "-c", "echo $CI"])
    assert r.stdout == b"1\n"


def test_doctor_returns_dict():
    d = stockade.doctor()
    assert isinstance(d, dict)
    assert "ok" in d


def test_threads_run_concurrently():
    # The GIL is released while waiting: 8 sleeps of 0.5 s overlap.
    import time
    from concurrent.futures import ThreadPoolExecutor

    sb = stockade.Sandbox()
    start = time.monotonic()
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda i: sb.run(["sh", "-c", f"sleep 0.5; echo {i}"]), range(8)))
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(8)]
    assert all(r.exit_code == 0 for r in results)
    assert elapsed < 3.0, elapsed


def test_session_runs_commands_in_one_sandbox():
    with stockade.Sandbox().session() as s:
        assert s.pid > 0
        r1 = s.run(["sh", "-c", "echo one > /tmp/shared; echo ok"])
        assert r1.exit_code == 0 and r1.stdout == b"ok\n"
        r2 = s.run(["cat", "/tmp/shared"])  # same sandbox: /tmp persists
        assert r2.stdout == b"one\n"
        r3 = s.run("exit 3", shell=True)
        assert r3.exit_code == 3
        r4 = s.run(["sleep", "30"], timeout=0.5)
        assert r4.timed_out
    with pytest.raises(stockade.SandboxError):
        s.run(["true"])


def test_session_containment():
    with stockade.Sandbox().session() as s:
        assert s.run(["ls", "/root"]).exit_code != 0
        assert s.run(["sh", "-c", "echo x > /etc/x"]).exit_code != 0
