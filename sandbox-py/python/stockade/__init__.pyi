"""Type stubs for `stockade`: run untrusted commands inside a
kernel-enforced Linux sandbox."""
import subprocess
from os import PathLike
from types import TracebackType
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

_Path = Union[str, "PathLike[str]"]
_Argv = Union[Sequence[str], str]
_Input = Union[bytes, bytearray, str, None]
_Stdio = Union[int, IO[Any], None]

PIPE: int
"""Connect the stream to a new pipe (`Process.stdin`/`stdout`/`stderr`)."""
DEVNULL: int
"""Connect the stream to /dev/null."""

class SandboxError(Exception):
    """Base class of every stockade error. The message is the core's."""

    layer: str
    """The sandbox layer the error is about (`"policy"`, `"namespaces"`,
    `"landlock"`, `"seccomp"`, `"exec"`, ...)."""

class PolicyError(SandboxError):
    """The policy or an argument is invalid; nothing was started."""

class UnsupportedError(SandboxError):
    """This host or build cannot enforce what the policy asks for."""

class HelperError(SandboxError):
    """The stockade-init helper is missing, not runnable, or mismatched."""

class SetupError(SandboxError):
    """A sandbox layer could not be set up; nothing ran."""

    step: str
    errno: int

class NotFoundError(SandboxError):
    """The program does not exist inside the sandbox."""

class NotExecutableError(SandboxError):
    """The program exists inside the sandbox but cannot be executed."""

class SandboxIOError(SandboxError):
    """Talking to the sandbox failed, or the session is closed."""

class TimeoutExpired(subprocess.TimeoutExpired):
    """`Process.wait`/`communicate` ran out of time; the command runs on."""

class Result:
    """How a `run` ended and what it wrote."""

    exit_code: int
    """The program's exit code; 128+N when killed by signal N; 124 on timeout."""
    signal: Optional[int]
    stdout: bytes
    stderr: bytes
    output: bytes
    """stdout followed by stderr (not interleaved in time order)."""
    timed_out: bool
    oom_killed: Optional[bool]
    """Whether the OOM killer fired; None when no memory cgroup was used."""
    truncated: bool
    """Whether stdout or stderr was cut at `max_output`."""
    duration: float
    """Wall-clock seconds from spawn to the end of the whole tree."""
    peak_memory: Optional[int]
    events: List[Dict[str, Any]]
    """The egress proxy's decisions (net="proxy"); empty otherwise."""
    @property
    def ok(self) -> bool:
        """exit_code == 0 and not timed_out."""

class Process:
    """A command running in its sandbox, like `subprocess.Popen`."""

    args: _Argv
    stdin: Optional[IO[bytes]]
    stdout: Optional[IO[bytes]]
    stderr: Optional[IO[bytes]]
    returncode: Optional[int]
    """Popen's convention: -N when killed by signal N."""
    exit_code: Optional[int]
    """stockade's convention: 128+N for signal N, 124 on timeout."""
    signal: Optional[int]
    timed_out: bool
    duration: Optional[float]
    @property
    def pid(self) -> int: ...
    def poll(self) -> Optional[int]: ...
    def wait(self, timeout: Optional[float] = None) -> int: ...
    def communicate(
        self, input: _Input = None, timeout: Optional[float] = None
    ) -> Tuple[Optional[bytes], Optional[bytes]]: ...
    def kill(self) -> None: ...
    def terminate(self) -> None: ...
    def send_signal(self, sig: int) -> None: ...
    def events(self) -> List[Dict[str, Any]]: ...
    def __enter__(self) -> "Process": ...
    def __exit__(self, *exc: Any) -> None: ...

class _Runner:
    def run(
        self,
        argv: _Argv,
        *,
        cwd: Optional[_Path] = None,
        input: _Input = None,
        timeout: Optional[float] = None,
        shell: bool = False,
        max_output: Optional[int] = None,
    ) -> Result:
        """Run to completion and capture the output (GIL released)."""
    async def run_async(
        self,
        argv: _Argv,
        *,
        cwd: Optional[_Path] = None,
        input: _Input = None,
        timeout: Optional[float] = None,
        shell: bool = False,
        max_output: Optional[int] = None,
    ) -> Result:
        """`run` as a coroutine; cancellation kills the sandboxed tree."""
    def spawn(
        self,
        argv: _Argv,
        *,
        stdin: _Stdio = ...,
        stdout: _Stdio = ...,
        stderr: _Stdio = ...,
        cwd: Optional[_Path] = None,
        timeout: Optional[float] = None,
        shell: bool = False,
    ) -> Process:
        """Start and return at once (streams default to PIPE)."""

class Session(_Runner):
    """One warm sandbox running many commands."""

    @property
    def pid(self) -> int: ...
    def open(self) -> "Session": ...
    def close(self) -> None: ...
    async def aclose(self) -> None: ...
    def __enter__(self) -> "Session": ...
    def __exit__(
        self,
        t: Optional[Type[BaseException]],
        e: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...
    async def __aenter__(self) -> "Session": ...
    async def __aexit__(self, *exc: Any) -> None: ...

class Sandbox(_Runner):
    """A sandbox policy; every run gets a fresh sandbox built from it."""

    def __init__(
        self,
        *,
        net: Optional[str] = None,
        ro: Sequence[_Path] = ...,
        rw: Sequence[_Path] = ...,
        overlay: Sequence[_Path] = ...,
        tmpfs: Sequence[str] = ...,
        allow_domain: Sequence[str] = ...,
        deny_domain: Sequence[str] = ...,
        allow_private: Sequence[str] = ...,
        resolve: Sequence[str] = ...,
        memory: Optional[str] = None,
        pids: Optional[int] = None,
        cpu: Optional[float] = None,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        pass_env: Sequence[str] = ...,
        cwd: Optional[_Path] = None,
        hostname: Optional[str] = None,
        uid: Optional[int] = None,
        gid: Optional[int] = None,
        tmp_size: Optional[str] = None,
        syscalls_allow: Sequence[str] = ...,
        syscalls_deny: Sequence[str] = ...,
        loopback_tcp: Optional[bool] = None,
        allow_no_landlock: Optional[bool] = None,
    ) -> None: ...
    @classmethod
    def from_toml(cls, path: _Path) -> "Sandbox": ...
    def session(self) -> Session: ...
    def prewarm(self) -> None: ...

def doctor() -> Dict[str, Any]:
    """Check every layer on this host; the structured report (plus "ok")."""

def set_helper_path(path: _Path) -> bool:
    """Use this stockade-init helper (first call wins)."""
