"""stockade: run untrusted commands inside a kernel-enforced Linux sandbox.

A thin wrapper over the Rust crate `stockade` (sandbox-core).
"""
import os as _os

from ._native import (  # noqa: F401
    HelperError,
    NotExecutableError,
    NotFoundError,
    PolicyError,
    RunResult as Result,
    Sandbox,
    Session,
    SandboxError,
    SandboxIOError,
    SetupError,
    UnsupportedError,
    doctor,
    set_helper_path,
)

# The helper shipped inside the package. An explicit STOCKADE_INIT wins
# (the core checks it after the process-wide path, so only set ours if unset).
_HELPER = _os.path.join(_os.path.dirname(__file__), "stockade-init")
if "STOCKADE_INIT" not in _os.environ and _os.access(_HELPER, _os.X_OK):
    set_helper_path(_HELPER)

__all__ = [
    "Sandbox",
    "Result",
    "Session",
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
