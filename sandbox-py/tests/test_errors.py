"""Bad arguments and host problems raise clear, typed errors; nothing runs."""
import pytest

import stockade


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="memroy"):
        stockade.Sandbox(memroy="1G")


def test_positional_arguments_are_refused():
    with pytest.raises(TypeError):
        stockade.Sandbox("none")


def test_bad_size_string():
    with pytest.raises(stockade.PolicyError, match="12Q") as e:
        stockade.Sandbox(memory="12Q")
    assert e.value.layer == "policy"
    assert isinstance(e.value, stockade.SandboxError)


def test_bad_net():
    with pytest.raises(stockade.PolicyError, match="everything"):
        stockade.Sandbox(net="everything")


def test_nonexistent_path():
    with pytest.raises(stockade.PolicyError, match="/nonexistent/stockade/path"):
        stockade.Sandbox(ro=["/nonexistent/stockade/path"])


def test_unknown_syscall_name():
    with pytest.raises(stockade.PolicyError, match="frobnicate"):
        stockade.Sandbox(syscalls_allow=["frobnicate"])


def test_bad_domain_pattern():
    with pytest.raises(stockade.PolicyError):
        stockade.Sandbox(allow_domain=["*"])


def test_bad_env_name():
    with pytest.raises(stockade.PolicyError, match="A=B"):
        stockade.Sandbox(env={"A=B": "x"})


def test_wrong_types():
    with pytest.raises(TypeError):
        stockade.Sandbox(pids="many")
    sb = stockade.Sandbox()
    with pytest.raises(stockade.PolicyError, match="list of strings"):
        sb.run("echo hi")  # a string without shell=True
    with pytest.raises(stockade.PolicyError, match="empty"):
        sb.run([])
    with pytest.raises(stockade.PolicyError, match="timeout"):
        sb.run(["true"], timeout=-1)
    with pytest.raises(stockade.PolicyError, match="bytes or str"):
        sb.run(["cat"], input=12)


def test_program_not_found_and_not_executable():
    with pytest.raises(stockade.NotFoundError) as e:
        stockade.Sandbox().run(["/no/such/program"])
    assert e.value.layer == "exec"
    with pytest.raises(stockade.NotExecutableError):
        stockade.Sandbox().run(["/etc/hostname"])


def test_from_toml_errors(workdir):
    import os

    p = os.path.join(workdir, "policy.toml")
    with open(p, "w") as f:
        f.write("bogus = 1\n")
    with pytest.raises(stockade.PolicyError, match="bogus"):
        stockade.Sandbox.from_toml(p)
    with pytest.raises(stockade.SandboxError):
        stockade.Sandbox.from_toml(os.path.join(workdir, "missing.toml"))


def test_bad_signal_number():
    p = stockade.Sandbox().spawn(["sleep", "30"])
    with pytest.raises(stockade.PolicyError, match="invalid signal"):
        p.send_signal(0)
    assert p.poll() is None  # untouched
    p.kill()
    assert p.wait() == -9
