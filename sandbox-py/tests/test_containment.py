"""Attacks through the Python API, each with the exact outcome, plus the
positive control that shows the allowed path works."""
import hashlib
import os

import stockade

PY_CONNECT = """
import errno, socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
"""


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_host_home_and_root_are_absent():
    assert os.path.isdir("/root")  # the host has it
    r = stockade.Sandbox().run(["ls", "/root"])
    assert r.exit_code == 2
    assert b"No such file or directory" in r.stderr


def test_system_dirs_are_read_only():
    before = sha256("/etc/hostname") if os.path.exists("/etc/hostname") else None
    r = stockade.Sandbox().run(["sh", "-c", "echo pwned > /etc/hostname"])
    assert r.exit_code == 2
    assert b"Read-only file system" in r.stderr
    if before is not None:
        assert sha256("/etc/hostname") == before
    assert not os.path.exists("/etc/stockade-py-test")


def test_ro_mount_cannot_be_written_and_the_host_file_is_unchanged(workdir):
    target = os.path.join(workdir, "auth.py")
    with open(target, "w") as f:
        f.write("SECRET = 1\n")
    before = sha256(target)
    sb = stockade.Sandbox(ro=[workdir])
    r = sb.run(["sh", "-c", f"echo 'SECRET = 2' > {target}"])
    assert r.exit_code == 2 and b"Read-only file system" in r.stderr
    r = sb.run(["rm", "-f", target])
    assert r.exit_code == 1
    assert sha256(target) == before
    # Positive control: reading is allowed.
    assert sb.run(["cat", target]).stdout == b"SECRET = 1\n"


def test_overlay_writes_are_discarded(workdir):
    target = os.path.join(workdir, "file")
    with open(target, "w") as f:
        f.write("original\n")
    r = stockade.Sandbox(overlay=[workdir]).run(
        ["sh", "-c", f"echo changed > {target}; cat {target}"]
    )
    assert r.exit_code == 0 and r.stdout == b"changed\n"
    with open(target) as f:
        assert f.read() == "original\n"


def test_no_network_by_default():
    # Landlock refuses every TCP connect with net="none"...
    r = stockade.Sandbox().run(["python3", "-c", PY_CONNECT, "1.1.1.1", "80"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == b"EACCES\n"
    # ...and without that rule the network namespace has no route out.
    sb = stockade.Sandbox(loopback_tcp=True)
    r = sb.run(["python3", "-c", PY_CONNECT, "1.1.1.1", "80"])
    assert r.stdout == b"ENETUNREACH\n"
    r = sb.run(["python3", "-c", PY_CONNECT.replace("socket.socket()", "socket.socket(type=socket.SOCK_DGRAM)"), "8.8.8.8", "53"])
    assert r.stdout == b"ENETUNREACH\n"
    r = sb.run(["cat", "/proc/net/dev"])
    ifaces = [l.split(b":")[0].strip() for l in r.stdout.splitlines()[2:]]
    assert ifaces == [b"lo"]


def test_no_capabilities_and_no_new_privs():
    r = stockade.Sandbox().run(["cat", "/proc/self/status"])
    status = dict(l.split(b":", 1) for l in r.stdout.splitlines() if b":" in l)
    for cap in (b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb"):
        assert status[cap].strip() == b"0000000000000000", cap
    assert status[b"NoNewPrivs"].strip() == b"1"
    assert status[b"Seccomp"].strip() == b"2"


def test_seccomp_refuses_namespaces_and_mount():
    r = stockade.Sandbox().run(["unshare", "-U", "true"])
    assert r.exit_code == 1
    assert b"Operation not permitted" in r.stderr
    r = stockade.Sandbox().run(
        ["python3", "-c", "import ctypes,os;l=ctypes.CDLL(None,use_errno=True);"
         "print(l.mount(b'x',b'/tmp',b'tmpfs',0,None), os.strerror(ctypes.get_errno()))"]
    )
    assert r.stdout == b"-1 Operation not permitted\n"


def test_pid_namespace_hides_host_processes():
    r = stockade.Sandbox().run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"])
    # The init, the shell, and ls/grep at most.
    assert int(r.stdout) <= 4, r.stdout
    assert os.getpid() > 0 and int(r.stdout) >= 2


def test_a_process_cannot_outlive_its_sandbox():
    from conftest import host_processes, marker_sleep, wait_until

    length = marker_sleep(1)
    r = stockade.Sandbox().run(["sh", "-c", f"setsid sleep {length} > /dev/null 2>&1 & echo started"])
    assert r.stdout == b"started\n"
    wait_until(lambda: not host_processes(f"sleep {length}"), "the detached sleep is gone")
