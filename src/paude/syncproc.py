"""Where a session's background sync keeps its state, and whether that sync runs.

The standard library only (no pathlib): the quick reattach asks whether the
sync runs without loading ``paude.sync``, whose daemon (``sync/daemon.py``)
takes these same two answers from here.
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def state_home(env: Mapping[str, str]) -> str:
    """Return paude's XDG state directory (``$XDG_STATE_HOME/paude``), the one place
    that says where it is (standard library only: the quick paths read it too)."""
    base = env.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser(env.get("HOME", "~")), ".local", "state")
    return os.path.join(base, "paude")


def state_root(env: Mapping[str, str]) -> str:
    """Return where every session's sync state lives (``$XDG_STATE_HOME/paude/sync``)."""
    return os.path.join(state_home(env), "sync")


def lock_holder(lock: str) -> int | None:
    """Return the pid of the process holding the sync lock file ``lock`` (-1: unreadable).

    ``None`` when the lock is free or missing: no sync of that session runs.
    """
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
