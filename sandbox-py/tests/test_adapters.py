"""The framework adapters' contracts, without the frameworks installed."""
import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import pytest

import stockade
from stockade.adapters.claude import sandbox_bash_hook, stockade_command
from stockade.adapters.deepagents import ExecuteResponse, StockadeBackend


def test_adapters_import_without_their_frameworks():
    for mod in ("deepagents", "langchain", "claude_agent_sdk"):
        assert mod not in sys.modules


# --- Deep Agents style backend -------------------------------------------

def test_execute_returns_output_exit_code_truncated(workdir):
    with StockadeBackend(stockade.Sandbox(rw=[workdir], cwd=workdir)) as b:
        r = b.execute("echo out; echo err >&2; exit 3")
        assert isinstance(r, ExecuteResponse)
        assert (r.output, r.exit_code, r.truncated) == ("out\nerr\n", 3, False)
        assert r["output"] == r.output and dict(r) == {"output": "out\nerr\n", "exit_code": 3, "truncated": False}
        assert b.id.startswith("stockade-")
        # State persists between calls, like any sandbox backend...
        assert b.execute("echo kept > state; cat state").output == "kept\n"
        assert b.execute("cat state").output == "kept\n"
    # ...and the rw directory is where it lands on the host.
    with open(os.path.join(workdir, "state")) as f:
        assert f.read() == "kept\n"


def test_execute_truncates_and_times_out():
    with StockadeBackend(max_output=100, timeout=0.5) as b:
        r = b.execute("yes | head -c 10000")
        assert r.truncated and r.exit_code == 0
        assert r.output.startswith("y\n" * 50) and "truncated at 100 bytes" in r.output
        r = b.execute("sleep 30")
        assert r.exit_code == 124 and "timed out" in r.output


def test_execute_is_contained(workdir):
    secret = os.path.join(workdir, "id_rsa")
    with open(secret, "w") as f:
        f.write("PRIVATE KEY\n")
    with StockadeBackend() as b:
        r = b.execute(f"cat {secret}; echo status=$?; ls /root")
        assert r.exit_code == 2
        assert f"cat: {secret}: No such file or directory\nstatus=1\n" in r.output
        assert "PRIVATE KEY" not in r.output
    # Positive control: granted read-only, the same command reads it.
    with StockadeBackend(stockade.Sandbox(ro=[workdir])) as b:
        assert b.execute(f"cat {secret}").output == "PRIVATE KEY\n"


def test_aexecute_and_files():
    with StockadeBackend() as b:
        r = asyncio.run(b.aexecute("echo async"))
        assert (r.output, r.exit_code) == ("async\n", 0)
        up = b.upload_files([("/tmp/dir/a.bin", bytes(range(256)))])
        assert up[0].error is None
        down = b.download_files(["/tmp/dir/a.bin", "/tmp/missing"])
        assert down[0].content == bytes(range(256)) and down[0].error is None
        assert down[1].content is None and "No such file" in down[1].error
        bad = b.upload_files([("/etc/planted", b"x")])
        assert bad[0].error and "Read-only" in bad[0].error


# --- Claude Agent SDK style PreToolUse hook ------------------------------

CLI = os.environ.get("STOCKADE_CLI") or os.path.join(
    os.path.dirname(__file__), "..", "..", "target", "debug", "stockade"
)


def run_hook(hook, tool_input, tool_name="Bash", cwd=None):
    data = {"hook_event_name": "PreToolUse", "tool_name": tool_name, "tool_input": tool_input}
    if cwd:
        data["cwd"] = cwd
    return asyncio.run(hook(data, "toolu_1", None))


def test_hook_rewrites_bash_into_stockade_run(workdir):
    hook = sandbox_bash_hook(stockade="/opt/bin/stockade", allow_domain=["pypi.org"], timeout=60)
    out = run_hook(hook, {"command": "pip install x && echo 'done'", "description": "d"}, cwd=workdir)
    spec = out["hookSpecificOutput"]
    assert spec["hookEventName"] == "PreToolUse" and spec["permissionDecision"] == "allow"
    assert spec["updatedInput"]["description"] == "d"  # other fields kept
    argv = shlex.split(spec["updatedInput"]["command"])
    assert argv == ["/opt/bin/stockade", "run", "--rw", workdir, "--allow-domain", "pypi.org",
                    "--cwd", workdir, "--timeout", "60", "--", "/bin/sh", "-c",
                    "pip install x && echo 'done'"]


def test_hook_passes_other_tools_and_denies_when_stockade_is_missing(monkeypatch):
    hook = sandbox_bash_hook(stockade="/opt/bin/stockade")
    assert run_hook(hook, {"file_path": "/x"}, tool_name="Read") == {}
    monkeypatch.setenv("PATH", "/nonexistent")
    out = run_hook(sandbox_bash_hook(), {"command": "ls"})
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "not found" in out["hookSpecificOutput"]["permissionDecisionReason"]
    out = run_hook(hook, {"command": "   "})
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_hook_wraps_a_command_that_tries_to_choose_its_own_policy():
    hook = sandbox_bash_hook(stockade="/opt/bin/stockade")
    evil = "stockade run --rw / -- sh -c 'cat /root/.ssh/id_rsa'"
    argv = shlex.split(run_hook(hook, {"command": evil})["hookSpecificOutput"]["updatedInput"]["command"])
    assert argv[:2] == ["/opt/bin/stockade", "run"] and argv[-1] == evil
    assert "/" not in argv[2:argv.index("--")]  # no --rw / of ours


def test_rewritten_command_runs_contained(workdir):
    # The command a shell would run for the agent, end to end.
    assert os.access(CLI, os.X_OK), f"build the CLI first: {CLI}"
    hook = sandbox_bash_hook(stockade=os.path.abspath(CLI))
    # A secret next to the project, which the host shell could read.
    secret_dir = tempfile.mkdtemp(prefix="stockade-hook-secret-", dir="/var/tmp")
    secret = os.path.join(secret_dir, "id_rsa")
    with open(secret, "w") as f:
        f.write("PRIVATE KEY\n")
    cmd = run_hook(hook, {"command": f"echo in-project > result; cat {secret}; ls /root"}, cwd=workdir)[
        "hookSpecificOutput"]["updatedInput"]["command"]
    r = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True)
    shutil.rmtree(secret_dir)
    assert r.returncode == 2, r.stderr
    assert f"cat: {secret}: No such file or directory".encode() in r.stderr
    assert b"ls: cannot access '/root': No such file or directory" in r.stderr
    assert b"PRIVATE KEY" not in r.stdout
    with open(os.path.join(workdir, "result")) as f:
        assert f.read() == "in-project\n"  # positive control: the project is writable
    assert stockade_command("true", stockade=os.path.abspath(CLI)).endswith("-- /bin/sh -c true")
