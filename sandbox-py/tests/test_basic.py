"""The run API: positive controls, exit codes, input, timeouts, output caps,
policies from keywords and TOML, doctor."""
import os

import pytest

import stockade


def test_echo_positive_control():
    r = stockade.Sandbox().run(["echo", "hello from stockade"])
    assert r.exit_code == 0 and r.ok
    assert r.signal is None
    assert r.stdout == b"hello from stockade\n"
    assert r.stderr == b""
    assert not r.timed_out and not r.truncated
    assert r.duration > 0
    assert r.events == []


def test_shell_and_input():
    r = stockade.Sandbox().run("read x; echo got:$x; echo err >&2", shell=True, input=b"abc\n")
    assert r.exit_code == 0
    assert r.stdout == b"got:abc\n"
    assert r.stderr == b"err\n"
    assert r.output == b"got:abc\nerr\n"  # stdout then stderr, not interleaved


def test_str_input_and_large_input():
    data = b"x" * (1 << 20)
    r = stockade.Sandbox().run(["wc", "-c"], input=data)
    assert r.stdout.strip() == str(len(data)).encode()
    assert stockade.Sandbox().run(["cat"], input="text").stdout == b"text"


def test_stdin_is_dev_null_without_input():
    r = stockade.Sandbox().run(["sh", "-c", "cat; echo end"])
    assert r.stdout == b"end\n"


def test_rw_mount_is_writable_and_the_host_sees_it(workdir):
    r = stockade.Sandbox(rw=[workdir]).run(["sh", "-c", f"echo inside > {workdir}/f"])
    assert r.exit_code == 0, r.stderr
    with open(os.path.join(workdir, "f")) as f:
        assert f.read() == "inside\n"


def test_cwd_and_pathlike(workdir):
    import pathlib

    p = pathlib.Path(workdir)
    (p / "marker").write_text("m")
    r = stockade.Sandbox(ro=[p]).run(["ls"], cwd=p)
    assert r.stdout == b"marker\n"


def test_exit_codes():
    sb = stockade.Sandbox()
    assert sb.run(["sh", "-c", "exit 7"]).exit_code == 7
    r = sb.run(["sh", "-c", "kill -9 $$"])
    assert r.signal == 9 and r.exit_code == 128 + 9
    assert not r.ok


def test_timeout_kills_the_tree():
    r = stockade.Sandbox().run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    assert r.timed_out
    assert r.exit_code == 124


def test_policy_timeout():
    r = stockade.Sandbox(timeout=0.5).run(["sleep", "30"])
    assert r.timed_out and r.exit_code == 124


def test_max_output_truncates_each_stream():
    r = stockade.Sandbox().run(
        ["sh", "-c", "head -c 100000 /dev/zero; head -c 50 /dev/zero >&2"], max_output=1000
    )
    assert r.exit_code == 0
    assert len(r.stdout) == 1000 and r.stdout == b"\0" * 1000
    assert len(r.stderr) == 50
    assert r.truncated
    # Positive control: under the cap nothing is cut.
    r = stockade.Sandbox().run(["echo", "short"], max_output=1000)
    assert r.stdout == b"short\n" and not r.truncated


def test_from_toml(workdir):
    p = os.path.join(workdir, "policy.toml")
    with open(p, "w") as f:
        f.write('env = ["GREETING=hi"]\ntimeout = 5\n')
    r = stockade.Sandbox.from_toml(p).run(["sh", "-c", "echo $GREETING"])
    assert r.stdout == b"hi\n"
    assert isinstance(stockade.Sandbox.from_toml(p), stockade.Sandbox)


def test_env_is_cleared_except_what_is_given(monkeypatch):
    monkeypatch.setenv("STOCKADE_SECRET", "s3cret")
    r = stockade.Sandbox(env={"CI": "1"}).run(["sh", "-c", "echo $CI:$STOCKADE_SECRET"])
    assert r.stdout == b"1:\n"
    r = stockade.Sandbox(pass_env=["STOCKADE_SECRET"]).run(["sh", "-c", "echo $STOCKADE_SECRET"])
    assert r.stdout == b"s3cret\n"


def test_doctor_returns_the_structured_report():
    d = stockade.doctor()
    assert isinstance(d, dict)
    assert d["ok"] is True
    assert isinstance(d["checks"], list) and d["checks"]


def test_result_repr():
    r = stockade.Sandbox().run(["true"])
    assert repr(r).startswith("<stockade.Result exit_code=0 ")
