"""Adapters that plug stockade into agent frameworks.

Pure Python; none imports its framework at import time, so they work (and
are tested) without the framework installed:

- ``stockade.adapters.deepagents.StockadeBackend``: a LangChain Deep Agents
  style sandbox backend (``execute(command) -> {output, exit_code, truncated}``).
- ``stockade.adapters.claude.sandbox_bash_hook``: a Claude Agent SDK style
  ``PreToolUse`` hook that rewrites every Bash command into a
  ``stockade run`` invocation.
"""
