"""Processes whose stdio the caller streams (the sync's exec streams) or detaches.

``Pipe`` hides ``subprocess`` from its users (only this package imports it):
the sync writes a tar into one and reads a tar or a watch's events out of another.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from paude.errors import OperationTimeoutError
from paude.redact import redact_argv
from paude.runner.terminal import debug as _debug
from paude.runner.terminal import resolve as _resolve


class Pipe:
    """A running process with binary pipes for stdin, stdout and stderr."""

    def __init__(self, argv: Sequence[str], *, stdin: bool = False) -> None:
        exe = _resolve(argv)
        _debug("pipe: %s", redact_argv(argv))
        self.argv = list(argv)
        self._proc = subprocess.Popen(
            [exe, *argv[1:]],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    @property
    def stdin(self) -> IO[bytes]:
        """The process's stdin (only when opened with ``stdin=True``)."""
        assert self._proc.stdin is not None
        return self._proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        """The process's stdout."""
        assert self._proc.stdout is not None
        return self._proc.stdout

    @property
    def stderr(self) -> IO[bytes]:
        """The process's stderr."""
        assert self._proc.stderr is not None
        return self._proc.stderr

    @property
    def pid(self) -> int:
        """The process id."""
        return self._proc.pid

    def poll(self) -> int | None:
        """Return the exit code, or None while it runs."""
        return self._proc.poll()

    def wait(self, timeout: float) -> int:
        """Wait for the exit code; kill the process and raise after ``timeout`` seconds."""
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            self.kill()
            raise OperationTimeoutError(
                f"'{redact_argv(self.argv)}' did not finish within {timeout:.0f}s"
            ) from err

    def kill(self) -> None:
        """Kill the process (if it still runs) and reap it."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


def spawn_detached(argv: Sequence[str], *, log: Path, env: Mapping[str, str]) -> int:
    """Start ``argv`` in its own session (it outlives this terminal); return its pid."""
    exe = _resolve(argv)
    _debug("spawn: %s", redact_argv(argv))
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env={**os.environ, **env},
            close_fds=True,
        )
    return proc.pid
