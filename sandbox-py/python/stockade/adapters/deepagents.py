"""A LangChain Deep Agents style sandbox backend on a warm stockade session.

Deep Agents gives the model an ``execute`` tool over a backend object and
derives its file tools from it. ``StockadeBackend`` provides the shape that
framework expects, ``execute(command) -> ExecuteResponse(output, exit_code,
truncated)``, plus ``aexecute``, ``id``, ``upload_files`` and
``download_files``. It does not import ``deepagents``.

    from stockade import Sandbox
    from stockade.adapters.deepagents import StockadeBackend

    backend = StockadeBackend(Sandbox(rw=["/work/repo"], cwd="/work/repo", timeout=120))
    backend.execute("pytest -q").output

All commands of one backend run in one warm session: files written by one
call are there for the next (as in any sandbox backend), and none of them
reach the host outside the policy's ``rw`` paths.
"""
import base64
import shlex
import uuid
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from .._api import Sandbox, Session

#: Default cap on what one ``execute`` returns to the model, in bytes.
DEFAULT_MAX_OUTPUT = 100_000


@dataclass(frozen=True)
class ExecuteResponse:
    """What one ``execute`` produced. Also readable as a mapping
    (``r["output"]``), for callers that expect a dict."""

    output: str
    exit_code: Optional[int]
    truncated: bool

    def __getitem__(self, key: str) -> Any:
        if key not in ("output", "exit_code", "truncated"):
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> Tuple[str, ...]:
        return ("output", "exit_code", "truncated")


@dataclass(frozen=True)
class FileUploadResponse:
    path: str
    error: Optional[str]


@dataclass(frozen=True)
class FileDownloadResponse:
    path: str
    content: Optional[bytes]
    error: Optional[str]


class StockadeBackend:
    """Run a Deep Agents sandbox backend's commands inside stockade."""

    def __init__(
        self,
        sandbox: Optional[Sandbox] = None,
        *,
        timeout: Optional[float] = 120.0,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ):
        self._sandbox = sandbox if sandbox is not None else Sandbox()
        self._session: Session = self._sandbox.session()
        self._timeout = timeout
        self._max_output = max_output
        self._id = f"stockade-{uuid.uuid4().hex[:12]}"

    @property
    def id(self) -> str:
        """A unique id for this backend's sandbox."""
        return self._id

    @staticmethod
    def _argv(command: str) -> List[str]:
        # One stream, in time order, as a terminal would show it.
        return ["/bin/sh", "-c", "exec 2>&1\n" + command]

    def _response(self, r) -> ExecuteResponse:
        output = r.stdout.decode("utf-8", errors="replace")
        if r.timed_out:
            output += f"\n[stockade: command timed out after {self._timeout} s; its processes were killed]"
        if r.truncated:
            output += f"\n[stockade: output truncated at {self._max_output} bytes]"
        return ExecuteResponse(output=output, exit_code=r.exit_code, truncated=r.truncated)

    def execute(self, command: str, *, timeout: Optional[float] = None) -> ExecuteResponse:
        """Run ``command`` with ``/bin/sh -c`` in the sandbox; stdout and
        stderr together, capped at ``max_output`` bytes."""
        r = self._session.run(
            self._argv(command),
            timeout=timeout or self._timeout,
            max_output=self._max_output,
        )
        return self._response(r)

    async def aexecute(self, command: str, *, timeout: Optional[float] = None) -> ExecuteResponse:
        """``execute`` as a coroutine; cancelling it kills the command."""
        r = await self._session.run_async(
            self._argv(command),
            timeout=timeout or self._timeout,
            max_output=self._max_output,
        )
        return self._response(r)

    def upload_files(self, files: Sequence[Tuple[str, bytes]]) -> List[FileUploadResponse]:
        """Write files inside the sandbox (where its policy allows writing)."""
        out = []
        for path, content in files:
            q = shlex.quote(path)
            r = self._session.run(
                ["/bin/sh", "-c", f'mkdir -p "$(dirname {q})" && cat > {q}'],
                input=bytes(content),
                timeout=self._timeout,
            )
            if r.exit_code == 0:
                out.append(FileUploadResponse(path=path, error=None))
            else:
                err = r.stderr.decode(errors="replace").strip() or "write failed"
                out.append(FileUploadResponse(path=path, error=err))
        return out

    def download_files(self, paths: Sequence[str]) -> List[FileDownloadResponse]:
        """Read files from inside the sandbox."""
        out = []
        for path in paths:
            r = self._session.run(["base64", "-w0", "--", path], timeout=self._timeout)
            if r.exit_code == 0:
                out.append(FileDownloadResponse(path, base64.b64decode(r.stdout), None))
            else:
                out.append(FileDownloadResponse(path, None, r.stderr.decode(errors="replace").strip() or "read failed"))
        return out

    def close(self) -> None:
        """End the session: every process of the sandbox is killed."""
        self._session.close()

    def __enter__(self) -> "StockadeBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
