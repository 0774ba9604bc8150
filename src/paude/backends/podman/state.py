"""Host-side files of a podman session (only the generated squid.conf)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Return paude's XDG state directory."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "paude"


def squid_conf_path(session: str) -> Path:
    """Return where the session's squid.conf lives (mounted read-only into the proxy)."""
    return state_dir() / "sessions" / session / "squid.conf"
