"""Where paude keeps host-side files (one definition for every layer)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Return paude's XDG state directory (``$XDG_STATE_HOME/paude``)."""
    from paude.syncproc import state_home

    return Path(state_home(os.environ))


def build_log_path(tag: str) -> Path:
    """Return where the log of building image ``tag`` is kept (the last build of it)."""
    name = tag.rsplit("/", 1)[-1].replace(":", "-")
    return state_dir() / "logs" / f"build-{name}.log"
