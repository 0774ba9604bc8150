"""Host-side files of a podman session (only the generated squid.conf)."""

from __future__ import annotations

from pathlib import Path

from paude.paths import state_dir

__all__ = ["claude_json_path", "squid_conf_path", "state_dir"]


def squid_conf_path(session: str) -> Path:
    """Return where the session's squid.conf lives (mounted read-only into the proxy)."""
    return state_dir() / "sessions" / session / "squid.conf"


def claude_json_path(session: str) -> Path:
    """Return where the session's filtered ~/.claude.json seed lives (mounted read-only)."""
    return state_dir() / "sessions" / session / "claude.json"
