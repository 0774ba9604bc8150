"""Run processes with timeouts, typed failures and debug logs.

Everything goes through a :class:`Runner` so that executors can be exercised
with a recording fake, and so every call has a timeout, a typed failure and a
debug log line. ``shell=True`` is never used: argv lists only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from paude.errors import CommandFailedError, OperationTimeoutError
from paude.redact import redact_argv
from paude.runner.terminal import debug as _debug
from paude.runner.terminal import resolve as _resolve

# Timeouts per kind of operation, in seconds.
TIMEOUT_INSPECT = 30.0
TIMEOUT_EXEC = 120.0
TIMEOUT_CREATE = 120.0
TIMEOUT_BUILD = 1800.0
TIMEOUT_SYNC = 600.0



@dataclass(frozen=True)
class Result:
    """The outcome of a finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float = field(default=0.0, compare=False)


class Runner(Protocol):
    """What executors need from the process layer."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Result:
        """Run to completion, capturing output."""
        ...

    def follow(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run to completion, handing each line of stdout and stderr (merged) to ``on_line``.

        The merged output is the result's ``stdout``; it never raises for an exit code.
        """
        ...

    def stream(
        self, argv: Sequence[str], *, timeout: float | None, env: Mapping[str, str] | None = None
    ) -> int:
        """Run with stdin/stdout/stderr inherited; return the exit code."""
        ...

    def exec_replace(self, argv: Sequence[str]) -> None:
        """Replace the current process with ``argv`` (used for attach)."""
        ...


def _merged_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    if env is None:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


class SystemRunner:
    """Run real processes."""

    def __init__(self, *, show_stderr: bool = False) -> None:
        self.show_stderr = show_stderr

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Result:
        """Run ``argv`` and capture its output; raise a typed error on failure."""
        exe = _resolve(argv)
        _debug("run: %s", redact_argv(argv))
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [exe, *argv[1:]],
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_merged_env(env),
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise OperationTimeoutError(
                f"'{redact_argv(argv)}' did not finish within {timeout:.0f}s"
            ) from err
        result = Result(
            tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start
        )
        if self.show_stderr and proc.stderr:
            sys.stderr.write(proc.stderr)
        if check and proc.returncode != 0:
            raise CommandFailedError(argv, proc.returncode, proc.stderr)
        return result

    def follow(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run ``argv``, calling ``on_line`` with each output line as it comes (builds, pushes)."""
        exe = _resolve(argv)
        _debug("follow: %s", redact_argv(argv))
        start = time.monotonic()
        lines: list[str] = []
        with subprocess.Popen([exe, *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True, errors="replace",
                              env=_merged_env(env)) as proc:
            timer = threading.Timer(timeout, proc.kill)  # a hung build is killed, not waited on
            timer.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    lines.append(line)
                    on_line(line.rstrip("\n"))
                proc.wait()
            finally:
                timer.cancel()
        seconds = time.monotonic() - start
        if proc.returncode < 0 and seconds >= timeout:
            raise OperationTimeoutError(
                f"'{redact_argv(argv)}' did not finish within {timeout:.0f}s")
        return Result(tuple(argv), proc.returncode, "".join(lines), "", seconds)

    def stream(
        self, argv: Sequence[str], *, timeout: float | None, env: Mapping[str, str] | None = None
    ) -> int:
        """Run ``argv`` attached to our stdio and return its exit code."""
        exe = _resolve(argv)
        _debug("stream: %s", redact_argv(argv))
        try:
            proc = subprocess.run(
                [exe, *argv[1:]], timeout=timeout, env=_merged_env(env), check=False
            )
        except subprocess.TimeoutExpired as err:
            raise OperationTimeoutError(
                f"'{redact_argv(argv)}' did not finish within {timeout or 0:.0f}s"
            ) from err
        return proc.returncode

    def exec_replace(self, argv: Sequence[str]) -> None:
        """Replace this process with ``argv``; never returns."""
        exe = _resolve(argv)
        _debug("exec: %s", redact_argv(argv))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(exe, list(argv))

