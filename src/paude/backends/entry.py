"""Attach and exec, written once: the order is fixed here, backends supply the argv.

Both commands find the session from the backend's labels, refuse one that
is not there or does not run (``SessionNotFoundError`` /
``SessionNotRunningError``, each with the command to run next), let the
backend make a running session whole, build the command with the backend's
step and run it through the one runner: ``attach`` replaces this process,
``exec`` passes stdio and the exit code through.

A backend fills in only what differs (hatch's environment interface, tox's
``ToxEnv.setup()`` calling its hooks): :meth:`SessionEntry._attach_argv` and
:meth:`SessionEntry._exec_argv` are required, the other hooks optional.

The podman quick path (``cli/fastpath.py``) runs the same podman argv
without loading this module; it never explains a failure itself, so every
refusal the user sees comes from here.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence

from paude.backends.base import Session, require_session
from paude.runner import Runner


class SessionEntry(ABC):
    """``attach_session`` and ``exec_in_session`` of every backend, and their checks."""

    runner: Runner

    @abstractmethod
    def find_session(self, name: str) -> Session | None:
        """REQUIRED (the Backend's own). Return the session called ``name``, or ``None``."""

    @abstractmethod
    def _attach_argv(self, session: Session) -> list[str]:
        """REQUIRED. Return the argv that attaches this terminal to the session's tmux."""

    @abstractmethod
    def _exec_argv(self, session: Session, command: Sequence[str], *, tty: bool) -> list[str]:
        """REQUIRED. Return the argv that runs ``command`` in the agent container.

        ``tty``: this process's stdin and stdout are both a terminal.
        """

    def _refuse_entry(self, session: Session) -> None:
        """OPTIONAL. Raise a backend's own reason a found session cannot be entered."""
        del session

    def _repair_entry(self, session: Session) -> None:
        """OPTIONAL. Make a running session's parts reachable again before entering it."""
        del session

    def _prepare_attach(self, session: Session) -> None:
        """OPTIONAL. Make a running (or degraded) session whole before attaching to it."""
        del session

    def _require_running(self, name: str) -> Session:
        """Return the session ``name`` if it runs (degraded counts: attach repairs it).

        Raises:
            SessionNotFoundError: nothing of that session exists.
            SessionNotRunningError: it is stopped, pending or failed.
        """
        session = require_session(self.find_session(name), name)
        self._refuse_entry(session)
        session = require_session(session, name, running=True)
        self._repair_entry(session)
        return session

    def attach_session(self, name: str) -> int:
        """Hand the terminal to the session's tmux (replaces this process)."""
        session = self._require_running(name)
        self._prepare_attach(session)
        self.runner.exec_replace(self._attach_argv(session))
        return 0  # only reached with a recording runner

    def exec_in_session(self, name: str, argv: Sequence[str]) -> int:
        """Run ``argv`` in the agent container; stdio and the exit code pass through."""
        session = self._require_running(name)
        tty = sys.stdin.isatty() and sys.stdout.isatty()
        return self.runner.stream(self._exec_argv(session, argv, tty=tty), timeout=None)
