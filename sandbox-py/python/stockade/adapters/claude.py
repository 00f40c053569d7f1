"""A Claude Agent SDK style ``PreToolUse`` hook that sandboxes Bash.

Every ``Bash`` tool call is rewritten into
``stockade run [policy options] -- /bin/sh -c '<command>'`` before the SDK
runs it, so the agent's shell never touches the host outside the policy:

    from claude_agent_sdk import ClaudeAgentOptions, HookMatcher
    from stockade.adapters.claude import sandbox_bash_hook

    hook = sandbox_bash_hook(rw=["/work/repo"], allow_domain=["pypi.org"])
    options = ClaudeAgentOptions(
        hooks={"PreToolUse": [HookMatcher(matcher="Bash", hooks=[hook])]})

The policy comes from the hook's arguments only. A command that itself
starts with ``stockade run`` is wrapped like any other (its options are the
agent's, not yours). When the ``stockade`` CLI cannot be found the hook
denies the call instead of letting it run unsandboxed.
"""
import shlex
import shutil
from typing import Any, Dict, List, Optional, Sequence


def stockade_command(
    command: str,
    *,
    stockade: str = "stockade",
    rw: Sequence[str] = (),
    ro: Sequence[str] = (),
    overlay: Sequence[str] = (),
    cwd: Optional[str] = None,
    allow_domain: Sequence[str] = (),
    timeout: Optional[float] = None,
    memory: Optional[str] = None,
    pids: Optional[int] = None,
    extra_args: Sequence[str] = (),
) -> str:
    """The shell command line that runs ``command`` under ``stockade run``."""
    args: List[str] = [stockade, "run"]
    for flag, values in (("--rw", rw), ("--ro", ro), ("--overlay", overlay)):
        for v in values:
            args += [flag, v]
    for d in allow_domain:
        args += ["--allow-domain", d]
    if cwd:
        args += ["--cwd", cwd]
    if timeout is not None:
        args += ["--timeout", f"{timeout:g}"]
    if memory:
        args += ["--memory", memory]
    if pids is not None:
        args += ["--pids", str(pids)]
    args += list(extra_args)
    args += ["--", "/bin/sh", "-c", command]
    return " ".join(shlex.quote(a) for a in args)


def _deny(reason: str) -> Dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }


def sandbox_bash_hook(
    *,
    stockade: Optional[str] = None,
    rw: Sequence[str] = (),
    ro: Sequence[str] = (),
    overlay: Sequence[str] = (),
    project_rw: bool = True,
    allow_domain: Sequence[str] = (),
    timeout: Optional[float] = None,
    memory: Optional[str] = None,
    pids: Optional[int] = None,
    extra_args: Sequence[str] = (),
):
    """Build an async ``PreToolUse`` hook for the Claude Agent SDK.

    ``(input_data, tool_use_id, context) -> dict``: for ``Bash`` calls it
    returns ``hookSpecificOutput`` with ``permissionDecision: "allow"`` and
    ``updatedInput`` whose ``command`` is the sandboxed one; other tools pass
    through (``{}``). With ``project_rw`` the call's ``cwd`` (the agent's
    project directory) is bound read-write and used as the working directory.
    """
    binary = stockade or shutil.which("stockade")

    async def hook(input_data: Dict[str, Any], tool_use_id: Optional[str], context: Any) -> Dict[str, Any]:
        if input_data.get("tool_name") != "Bash":
            return {}
        tool_input = dict(input_data.get("tool_input") or {})
        command = tool_input.get("command")
        if not isinstance(command, str) or not command.strip():
            return _deny("stockade: the Bash call has no command")
        if not binary:
            return _deny(
                "stockade: the `stockade` CLI was not found on PATH, so the command "
                "cannot be sandboxed and is not run. Install it (cargo install --path "
                "sandbox-cli) or pass stockade=/path/to/stockade."
            )
        project = input_data.get("cwd") if project_rw else None
        tool_input["command"] = stockade_command(
            command,
            stockade=binary,
            rw=[*rw, project] if project else rw,
            ro=ro,
            overlay=overlay,
            cwd=project,
            allow_domain=allow_domain,
            timeout=timeout,
            memory=memory,
            pids=pids,
            extra_args=extra_args,
        )
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "allow",
                "permissionDecisionReason": "sandboxed by stockade",
                "updatedInput": tool_input,
            }
        }

    return hook
