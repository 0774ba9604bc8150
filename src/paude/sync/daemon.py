"""The background sync of one session: its files, its lock, start, stop, status.

One sync process per session, guaranteed by an exclusive lock it holds for
its whole life; ``paude sync`` and ``paude stop`` take the same lock for a
round in the foreground. State lives in ``$XDG_STATE_HOME/paude/sync/<session>``.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paude import syncproc
from paude.errors import OperationTimeoutError, PaudeError
from paude.sync.paths import Excludes
from paude.sync.state import write_atomic
from paude.sync.transport import ExecTransport

STOP_TIMEOUT_S = 30.0


class SyncBusyError(PaudeError):
    """Another sync of the session holds its lock."""


@dataclass(frozen=True)
class SyncSpec:
    """What a session's sync pairs: a local workspace and the pod's, plus excludes."""

    session: str
    workspace: Path
    transport: ExecTransport
    excludes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the spec as JSON data (the daemon reads it back)."""
        return {"session": self.session, "workspace": str(self.workspace),
                "prefix": list(self.transport.prefix), "root": self.transport.root,
                "excludes": list(self.excludes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncSpec:
        """Read what ``to_json`` wrote."""
        return cls(data["session"], Path(data["workspace"]),
                   ExecTransport(tuple(data["prefix"]), data["root"]), tuple(data["excludes"]))

    def compiled_excludes(self) -> Excludes:
        """Return the excludes, compiled."""
        return Excludes(self.excludes)


def state_root(env: dict[str, str] | None = None) -> Path:
    """Return where every session's sync state lives."""
    return Path(syncproc.state_root(dict(os.environ) if env is None else env))


@dataclass(frozen=True)
class SyncFiles:
    """The files of one session's sync."""

    dir: Path

    @classmethod
    def of(cls, session: str, *, create: bool = True) -> SyncFiles:
        """Return the files of ``session`` (the directory is created unless ``create`` is off)."""
        d = state_root() / session
        if create:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(d)

    spec = property(lambda self: self.dir / "spec.json")
    index = property(lambda self: self.dir / "index.json")
    lock = property(lambda self: self.dir / "lock")
    status = property(lambda self: self.dir / "status.json")
    log = property(lambda self: self.dir / "sync.log")

    def read_spec(self) -> SyncSpec:
        """Return the saved spec."""
        return SyncSpec.from_json(json.loads(self.spec.read_text()))

    def read_status(self) -> dict[str, Any]:
        """Return the last written status (empty when none)."""
        try:
            data: dict[str, Any] = json.loads(self.status.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def write_status(self, data: dict[str, Any]) -> None:
        """Write the status atomically."""
        write_atomic(self.status, json.dumps(data, indent=1, sort_keys=True))


@contextmanager
def held_lock(files: SyncFiles) -> Iterator[None]:
    """Hold the session's sync lock; raise SyncBusyError if another process has it."""
    fd = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise SyncBusyError("another sync of this session is running",
                                hint="See: paude sync --status") from err
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def running_pid(files: SyncFiles) -> int | None:
    """Return the pid of the process holding the lock, or None when it is free."""
    return syncproc.lock_holder(str(files.lock))


def spawn(files: SyncFiles, spec: SyncSpec) -> bool:
    """Save ``spec`` and start the background sync unless it runs; say whether it started."""
    write_atomic(files.spec, json.dumps(spec.to_json(), indent=1))
    if running_pid(files) is not None:
        return False
    from paude.runner.pipes import spawn_detached

    argv = [sys.executable, "-m", "paude.sync", str(files.dir)]
    pid = spawn_detached(argv, log=files.log, env={"PYTHONUNBUFFERED": "1"})
    _wait_locked(files, pid)
    return True


def _wait_locked(files: SyncFiles, pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """Wait until the new sync process holds the lock (or has exited: another one won)."""
    pidfd = os.pidfd_open(pid)
    try:
        deadline = time.monotonic() + timeout
        while running_pid(files) is None:
            if select.select([pidfd], [], [], 0.01)[0]:
                os.waitpid(pid, 0)
                return
            if time.monotonic() > deadline:
                raise OperationTimeoutError(f"the sync process did not start in {timeout:.0f}s",
                                            hint=f"See its log: {files.log}")
    finally:
        os.close(pidfd)


def stop(files: SyncFiles, *, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the background sync (it ends its round first); say whether one ran."""
    pid = running_pid(files)
    if pid is None or pid <= 0:
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        if not select.select([pidfd], [], [], timeout)[0]:
            raise OperationTimeoutError(f"the sync process {pid} did not stop in {timeout:.0f}s",
                                        hint=f"Stop it with: kill {pid}")
    finally:
        os.close(pidfd)
    return True
