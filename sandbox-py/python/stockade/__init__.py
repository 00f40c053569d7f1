"""stockade: run untrusted commands inside a kernel-enforced Linux sandbox.

A thin wrapper over the Rust crate `stockade` (sandbox-core): the policy is
validated and every layer is built by the core; this package adds the
Python conventions (``subprocess``-like ``Process``, ``asyncio``,
context managers).

    import stockade
    sb = stockade.Sandbox(net="none", rw=["./repo"], memory="512M", timeout=30)
    r = sb.run(["pytest", "-q"], cwd="./repo")
    print(r.exit_code, r.stdout.decode())
"""
import os as _os

from . import _native
from ._native import (  # noqa: F401
    DEVNULL,
    PIPE,
    HelperError,
    NotExecutableError,
    NotFoundError,
    PolicyError,
    Result,
    SandboxError,
    SandboxIOError,
    SetupError,
    UnsupportedError,
    doctor,
    set_helper_path,
)
from ._api import Process, Sandbox, Session, TimeoutExpired  # noqa: F401

# The helper shipped inside the package. An explicit STOCKADE_INIT wins
# (the core checks it after the process-wide path, so only set ours if unset).
_HELPER = _os.path.join(_os.path.dirname(__file__), "stockade-init")
if "STOCKADE_INIT" not in _os.environ and _os.access(_HELPER, _os.X_OK):
    set_helper_path(_HELPER)

__all__ = [
    "Sandbox",
    "Session",
    "Process",
    "Result",
    "TimeoutExpired",
    "PIPE",
    "DEVNULL",
    "doctor",
    "set_helper_path",
    "SandboxError",
    "PolicyError",
    "UnsupportedError",
    "HelperError",
    "SetupError",
    "NotFoundError",
    "NotExecutableError",
    "SandboxIOError",
]
