from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

_Path = Union[str, "PathLike[str]"]

class SandboxError(Exception):
    layer: str

class PolicyError(SandboxError): ...
class UnsupportedError(SandboxError): ...
class HelperError(SandboxError): ...

class SetupError(SandboxError):
    step: str
    errno: int

class NotFoundError(SandboxError): ...
class NotExecutableError(SandboxError): ...
class SandboxIOError(SandboxError): ...

class Result:
    exit_code: int
    signal: Optional[int]
    stdout: bytes
    stderr: bytes
    output: bytes
    timed_out: bool
    oom_killed: Optional[bool]
    truncated: bool
    duration: float
    peak_memory: Optional[int]
    events: List[Dict[str, Any]]

class Session:
    pid: int
    def run(
        self,
        argv: Union[Sequence[str], str],
        *,
        cwd: Optional[_Path] = None,
        input: Optional[Union[bytes, str]] = None,
        timeout: Optional[float] = None,
        shell: bool = False,
        max_output: Optional[int] = None,
    ) -> Result: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Session": ...
    def __exit__(self, *args: Any) -> bool: ...

class Sandbox:
    def __init__(
        self,
        *,
        net: Optional[str] = None,
        ro: Sequence[str] = ...,
        rw: Sequence[str] = ...,
        overlay: Sequence[str] = ...,
        tmpfs: Sequence[str] = ...,
        allow_domain: Sequence[str] = ...,
        deny_domain: Sequence[str] = ...,
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
    @staticmethod
    def from_toml(path: _Path) -> "Sandbox": ...
    def run(
        self,
        argv: Union[Sequence[str], str],
        *,
        cwd: Optional[_Path] = None,
        input: Optional[Union[bytes, str]] = None,
        timeout: Optional[float] = None,
        shell: bool = False,
        max_output: Optional[int] = None,
    ) -> Result: ...
    def session(self) -> Session: ...

def doctor() -> Dict[str, Any]: ...
def set_helper_path(path: _Path) -> bool: ...
