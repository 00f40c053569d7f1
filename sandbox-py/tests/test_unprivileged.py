"""The binding used by an unprivileged caller (the identity mapping differs
from root's): the package is copied where the user `stockade-test` can read
it and driven by the system's python3 under `runuser`."""
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

import stockade

USER = "stockade-test"
PYTHON = "/usr/bin/python3"

SCRIPT = r"""
import json, os, stockade
out = {}
sb = stockade.Sandbox(rw=[os.environ["WORK"]])
r = sb.run(["sh", "-c", "id -u; echo made > %s/made; echo x > /etc/x" % os.environ["WORK"]])
out["run"] = [r.exit_code, r.stdout.decode(), r.stderr.decode()]
r = sb.run(["ls", "/root"])
out["root"] = [r.exit_code, r.stderr.decode()]
import asyncio
out["async"] = asyncio.run(stockade.Sandbox().run_async(["echo", "a"])).stdout.decode()
with stockade.Sandbox().session() as s:
    out["session"] = s.run(["echo", "s"]).stdout.decode()
try:
    stockade.Sandbox(memory="64M").run(["true"])
    out["memory"] = "ran"
except stockade.SandboxError as e:
    out["memory"] = [type(e).__name__, e.layer, str(e)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def unprivileged():
    if os.geteuid() != 0:
        pytest.fail("the Python suite runs as root (it sets up the unprivileged user)")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", USER], check=True)
    base = tempfile.mkdtemp(prefix="stockade-py-unpriv-", dir="/var/tmp")
    os.chmod(base, 0o755)
    pkg = os.path.dirname(stockade.__file__)
    shutil.copytree(pkg, os.path.join(base, "stockade"), ignore=shutil.ignore_patterns("__pycache__"))
    work = os.path.join(base, "work")
    os.mkdir(work)
    user = pwd.getpwnam(USER)
    os.chown(work, user.pw_uid, user.pw_gid)
    yield base, work, user
    shutil.rmtree(base, ignore_errors=True)


def test_the_binding_works_and_contains_as_an_unprivileged_user(unprivileged):
    import json

    base, work, user = unprivileged
    p = subprocess.run(
        ["runuser", "-u", USER, "--", "env", f"PYTHONPATH={base}", f"WORK={work}",
         "PYTHONDONTWRITEBYTECODE=1", PYTHON, "-c", SCRIPT],
        capture_output=True, cwd="/",
    )
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    code, stdout, stderr = out["run"]
    assert code == 2 and "Read-only file system" in stderr
    assert stdout == f"{user.pw_uid}\n"  # the caller keeps its uid inside
    with open(os.path.join(work, "made")) as f:
        assert f.read() == "made\n"
    assert os.stat(os.path.join(work, "made")).st_uid == user.pw_uid  # owned by the caller
    assert out["root"][0] == 2 and "No such file or directory" in out["root"][1]
    assert out["async"] == "a\n" and out["session"] == "s\n"
    # Memory limits need a delegated cgroup, which this user lacks here:
    # a typed error naming the layer, never an unlimited run.
    if out["memory"] != "ran":
        kind, layer, message = out["memory"]
        assert kind == "UnsupportedError" and layer == "cgroup", out["memory"]
        assert "memory" in message
