"""The Python-side API: ``Sandbox``, ``Session`` and ``Process``.

Everything that touches the kernel happens in ``_native`` (the Rust core);
this module only adds the conventions Python users know: ``subprocess``'s
``Popen``/``communicate``/``TimeoutExpired``, ``asyncio`` coroutines whose
cancellation kills the sandboxed tree, and context managers.
"""
import asyncio
import io
import os
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _native

Argv = Union[Sequence[str], str]


class TimeoutExpired(subprocess.TimeoutExpired):
    """``Process.wait``/``communicate`` ran out of time; the command runs on.

    A subclass of ``subprocess.TimeoutExpired``, so existing handlers catch it.
    """


def _settle(fut: "asyncio.Future[Any]", result: Any, error: Optional[BaseException]) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


async def _await_job(start, argv: Argv, kwargs: Dict[str, Any]) -> "_native.Result":
    """Run a native job on its own thread and await it without blocking the
    loop. Cancelling the awaiting task kills the sandboxed tree, and the
    cancellation propagates only once that tree is gone."""
    loop = asyncio.get_running_loop()
    fut: "asyncio.Future[_native.Result]" = loop.create_future()
    # Mark the outcome as retrieved even if nobody awaits it any more.
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    def done(result, error):  # on the job's thread, with the GIL
        try:
            loop.call_soon_threadsafe(_settle, fut, result, error)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting

    job = start(argv, done, **kwargs)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        job.kill()
        try:
            await asyncio.shield(fut)
        except BaseException:  # noqa: BLE001 - the cancellation wins
            pass
        raise


class Process:
    """A command running in its sandbox, like ``subprocess.Popen``.

    Created by ``Sandbox.spawn`` / ``Session.spawn``. ``stdin``, ``stdout``
    and ``stderr`` are binary file objects where ``PIPE`` was asked for,
    else ``None``. Dropping the last reference to a process started by
    ``Sandbox.spawn`` kills its sandbox (a sandbox never outlives its owner).
    """

    def __init__(self, native: "_native.Process", args: Argv):
        self._native = native
        self.args = args
        self.returncode: Optional[int] = None
        self.exit_code: Optional[int] = None
        self.signal: Optional[int] = None
        self.timed_out = False
        self.duration: Optional[float] = None
        i, o, e = native.take_pipes()
        self.stdin: Optional[io.BufferedWriter] = open(i, "wb") if i is not None else None
        self.stdout: Optional[io.BufferedReader] = open(o, "rb") if o is not None else None
        self.stderr: Optional[io.BufferedReader] = open(e, "rb") if e is not None else None
        self._readers: Optional[List[threading.Thread]] = None
        self._chunks: Tuple[List[bytes], List[bytes]] = ([], [])

    @property
    def pid(self) -> int:
        """Host pid of the sandbox's init (in a session: the command's pid
        inside the sandbox)."""
        return self._native.pid

    def _record(self, status) -> Optional[int]:
        if status is not None and self.returncode is None:
            self.exit_code, self.signal, self.timed_out, self.duration = status
            # Popen's convention: -N when killed by signal N.
            self.returncode = -self.signal if self.signal else self.exit_code
        return self.returncode

    def poll(self) -> Optional[int]:
        """The return code if the command has ended, else ``None``."""
        return self._record(self._native.poll())

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for the end; raise ``TimeoutExpired`` after ``timeout`` seconds.

        The GIL is released while waiting."""
        if self.stdin is not None and not self.stdin.closed:
            try:
                self.stdin.close()
            except BrokenPipeError:
                pass
        code = self._record(self._native.wait(timeout))
        if code is None:
            raise TimeoutExpired(self.args, timeout)
        return code

    def kill(self) -> None:
        """SIGKILL the whole sandboxed tree (in a session: this command's)."""
        self._native.kill()

    def terminate(self) -> None:
        """SIGTERM the command's processes, letting them clean up."""
        self._native.send_signal(15)

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the command's processes."""
        self._native.send_signal(int(sig))

    def events(self) -> List[Dict[str, Any]]:
        """The egress proxy's decisions (complete once ``wait`` returned)."""
        return self._native.events()

    def _start_readers(self) -> None:
        def pump(f, chunks):
            while True:
                b = f.read1(65536) if hasattr(f, "read1") else f.read(65536)
                if not b:
                    return
                chunks.append(b)

        self._readers = []
        for f, chunks in ((self.stdout, self._chunks[0]), (self.stderr, self._chunks[1])):
            if f is not None:
                t = threading.Thread(target=pump, args=(f, chunks), daemon=True)
                t.start()
                self._readers.append(t)

    def communicate(
        self, input: Optional[bytes] = None, timeout: Optional[float] = None
    ) -> Tuple[Optional[bytes], Optional[bytes]]:
        """Send ``input``, read stdout and stderr to their end, wait.

        Returns ``(stdout, stderr)`` (``None`` for a stream not piped). On
        ``timeout`` raises ``TimeoutExpired``; nothing read is lost, and
        calling ``communicate()`` again goes on collecting."""
        if self._readers is None:
            if input is not None:
                if self.stdin is None:
                    raise ValueError("communicate(input=...) needs stdin=stockade.PIPE")
                data = input.encode() if isinstance(input, str) else bytes(input)
                stdin = self.stdin

                def feed():
                    try:
                        stdin.write(data)
                        stdin.close()
                    except (BrokenPipeError, ValueError, OSError):
                        pass

                threading.Thread(target=feed, daemon=True).start()
            elif self.stdin is not None:
                try:
                    self.stdin.close()
                except BrokenPipeError:
                    pass
            self._start_readers()
        assert self._readers is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._readers:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                raise TimeoutExpired(self.args, timeout)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        code = self._record(self._native.wait(left))
        if code is None:
            raise TimeoutExpired(self.args, timeout)
        out = b"".join(self._chunks[0]) if self.stdout is not None else None
        err = b"".join(self._chunks[1]) if self.stderr is not None else None
        return out, err

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc) -> None:
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        if self.returncode is None:
            self.kill()
            self.wait()

    def __repr__(self) -> str:
        return f"<stockade.Process pid={self.pid} returncode={self.returncode}>"


class _Runner:
    """What ``Sandbox`` and ``Session`` share: run, run_async, spawn."""

    def _target(self):  # the native Sandbox or Session
        raise NotImplementedError

    def run(
        self,
        argv: Argv,
        *,
        cwd: Optional[str] = None,
        input: Union[bytes, str, None] = None,
        timeout: Optional[float] = None,
        shell: bool = False,
        max_output: Optional[int] = None,
    ) -> "_native.Result":
        """Run ``argv`` to completion and capture its output.

        ``argv`` is a list of strings, or one string with ``shell=True``
        (run by ``/bin/sh -c``). ``input`` is fed to stdin (else
        ``/dev/null``). ``timeout`` (seconds) overrides the policy's; on
        expiry the whole tree is killed, ``timed_out`` is set and
        ``exit_code`` is 124. ``max_output`` caps stdout and stderr each, in
        bytes; the rest is read and dropped and ``truncated`` is set. The
        GIL is released while the command runs."""
        return self._target().run(
            argv, cwd=_fspath(cwd), input=input, timeout=timeout, shell=shell,
            max_output=max_output,
        )

    async def run_async(
        self,
        argv: Argv,
        *,
        cwd: Optional[str] = None,
        input: Union[bytes, str, None] = None,
        timeout: Optional[float] = None,
        shell: bool = False,
        max_output: Optional[int] = None,
    ) -> "_native.Result":
        """``run`` as a coroutine: the command runs on a thread of its own
        and never blocks the event loop. Cancelling the awaiting task (for
        example by ``asyncio.wait_for``) kills the sandboxed tree."""
        return await _await_job(
            self._target().start,
            argv,
            dict(cwd=_fspath(cwd), input=input, timeout=timeout, shell=shell,
                 max_output=max_output),
        )

    def spawn(
        self,
        argv: Argv,
        *,
        stdin: Any = _native.PIPE,
        stdout: Any = _native.PIPE,
        stderr: Any = _native.PIPE,
        cwd: Optional[str] = None,
        timeout: Optional[float] = None,
        shell: bool = False,
    ) -> Process:
        """Start ``argv`` and return at once with a ``Process``.

        ``stdin``/``stdout``/``stderr``: ``stockade.PIPE`` (the default),
        ``stockade.DEVNULL``, ``None`` (this process's own), a descriptor
        number or a file object."""
        native = self._target().spawn(
            argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=_fspath(cwd),
            timeout=timeout, shell=shell,
        )
        return Process(native, argv)


def _fspath(p):
    return None if p is None else os.fspath(p)


class Sandbox(_Runner):
    """A sandbox policy. Build it once; every ``run``/``spawn`` gets a fresh
    sandbox built from it.

    Keywords (all optional, the same names as the CLI options and TOML
    keys): ``net`` ("none" or "proxy"), ``ro``, ``rw``, ``overlay``,
    ``tmpfs`` (lists of paths or ``SRC:DST``), ``allow_domain``,
    ``deny_domain``, ``allow_private``, ``resolve``, ``memory`` ("512M"),
    ``pids``, ``cpu``, ``timeout`` (seconds), ``env`` (dict), ``pass_env``,
    ``cwd``, ``hostname``, ``uid``, ``gid``, ``tmp_size``,
    ``syscalls_allow``, ``syscalls_deny``, ``loopback_tcp``,
    ``allow_no_landlock``. An unknown keyword is a ``TypeError``; an invalid
    value a ``PolicyError``, raised here, before anything runs."""

    __slots__ = ("_native",)

    def __init__(self, **policy: Any):
        for key in ("ro", "rw", "overlay", "tmpfs"):
            if key in policy and policy[key] is not None:
                policy[key] = [os.fspath(p) for p in policy[key]]
        if policy.get("cwd") is not None:
            policy["cwd"] = os.fspath(policy["cwd"])
        self._native = _native.Sandbox(**policy)

    @classmethod
    def from_toml(cls, path: str) -> "Sandbox":
        """Load a policy from a TOML file (the CLI's ``--policy`` format)."""
        sb = cls.__new__(cls)
        sb._native = _native.Sandbox.from_toml(os.fspath(path))
        return sb

    def _target(self):
        return self._native

    def session(self) -> "Session":
        """A warm session: one sandbox, many commands. Use it as a context
        manager (``with`` or ``async with``); it starts on entry (or on first
        use) and ends, killing whatever still runs, on exit."""
        return Session(self)

    def prewarm(self) -> None:
        """Keep one sandbox for this policy pre-built in the background, so
        the next ``run`` skips the helper's start and namespace creation."""
        self._native.prewarm()

    def __repr__(self) -> str:
        return repr(self._native)


class Session(_Runner):
    """One warm sandbox running many commands (see ``Sandbox.session``).

    Commands share the sandbox's filesystem (``/tmp`` included) and its
    limits; each runs under its own Landlock domain and seccomp filter."""

    def __init__(self, sandbox: Sandbox):
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self._native_session: Optional["_native.Session"] = None
        self._closed = False

    def open(self) -> "Session":
        """Start the session now (else the first use starts it)."""
        self._target()
        return self

    def _target(self):
        with self._lock:
            if self._closed:
                raise _native.SandboxIOError("the session is closed")
            if self._native_session is None:
                self._native_session = self._sandbox._native.session()
            return self._native_session

    @property
    def pid(self) -> int:
        """Host pid of the session's init."""
        return self._target().pid

    def close(self) -> None:
        """End the session: kill what still runs, wait until it is gone."""
        with self._lock:
            self._closed = True
            s, self._native_session = self._native_session, None
        if s is not None:
            s.close()

    async def aclose(self) -> None:
        """``close`` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __enter__(self) -> "Session":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    async def __aenter__(self) -> "Session":
        await asyncio.get_running_loop().run_in_executor(None, self.open)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._native_session else "not started")
        return f"<stockade.Session {state}>"
