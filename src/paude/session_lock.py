"""One changing paude command at a time per session, and one build per image tag:
lock files in the state dir.

Two ``paude --detach`` for one workspace at once would both create the same
containers (podman: "the container name ... is already in use"), and a
``paude stop`` during a start would remove what the start is still making.
Every command that changes a session holds this lock; the second waits, then
finds the session the first made (or removed).

Two starts of different sessions that need the same image not built yet
would both build it; the build of a tag holds :func:`image_lock`, and the
second, once it holds it, finds the image the first built.

``fcntl.flock`` (the standard library; the ``filelock`` package uses the same
call on Unix) is released by the kernel when the holder exits in any way,
``kill -9`` included, so an interrupted start never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from paude.errors import SessionNotFoundError
from paude.paths import state_dir


def lock_path(session: str) -> Path:
    """Return the lock file of ``session``."""
    return state_dir() / "locks" / f"{session}.lock"


class HeldLock:
    """A held session lock (see :func:`session_lock`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def discard(self) -> None:
        """Remove the lock file while still holding it (the session is gone).

        A waiter that opened the removed file sees that it was replaced and
        locks the path again (see :func:`_acquire`), so two commands never
        hold the same session at once.
        """
        self.path.unlink(missing_ok=True)


@contextmanager
def session_lock(session: str, *, on_wait: Callable[[str], None]) -> Iterator[HeldLock]:
    """Hold ``session``'s lock for the ``with`` block, waiting for another holder.

    Args:
        on_wait: called once with a message when another command holds it.
    """
    path = lock_path(session)
    fd = _acquire(path, f"Waiting for another paude command on session {session}{{holder}}"
                  " to finish", on_wait)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield HeldLock(path)
    except SessionNotFoundError:
        # No such session (e.g. `paude stop` of a mistyped name): leave no lock file.
        HeldLock(path).discard()
        raise
    finally:
        os.close(fd)  # releases the lock


def image_lock_path(tag: str) -> Path:
    """Return the lock file of building the image ``tag``."""
    return state_dir() / "locks" / "images" / f"{re.sub(r'[^A-Za-z0-9_.-]', '-', tag)}.lock"


@contextmanager
def image_lock(tag: str, *, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock of building the image ``tag`` for the ``with`` block.

    The holder checks again, once it holds it, whether the image exists: a
    paude it waited for may have built it.

    Args:
        on_wait: called once with a message when another paude holds it.
    """
    path = image_lock_path(tag)
    fd = _acquire(path, f"Waiting for another paude building image {tag}{{holder}}", on_wait)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        HeldLock(path).discard()  # no file left per tag; a waiter locks the path anew
        os.close(fd)


def _acquire(path: Path, waiting: str, on_wait: Callable[[str], None]) -> int:
    """Lock ``path``; ``waiting`` (with ``{holder}``) is said once if another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not told:
                on_wait(waiting.replace("{holder}", _holder(fd)))
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks; Ctrl+C interrupts it
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the holder discarded that file: lock the current one


def _same_file(fd: int, path: Path) -> bool:
    try:
        held, current = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)


def _holder(fd: int) -> str:
    pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return f" (pid {pid})" if pid.isdigit() else ""
