"""The one attach/exec flow (backends/entry.py): its order and its refusals.

A minimal backend fills in only the argv steps, as the real ones do; the
real attach and exec run in tests/podman/test_session*.py and
tests/k8s/test_openshift_attach.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from fakes import RecordingRunner
from paude.backends.base import Session, SessionStatus
from paude.backends.entry import SessionEntry
from paude.backends.openshift.backend import OpenShiftBackend
from paude.backends.podman.backend import PodmanBackend
from paude.errors import SessionNotFoundError, SessionNotRunningError
from paude.naming import NetworkMode


class MiniBackend(SessionEntry):
    """One session, whose status the test sets; records what the flow asked of it."""

    def __init__(self, status: SessionStatus | None) -> None:
        self.runner = RecordingRunner()
        self.status = status
        self.prepared: list[str] = []

    def find_session(self, name: str) -> Session | None:
        if self.status is None:
            return None
        return Session(name, "mini", self.status, "/work", "2026-01-01T00:00:00+00:00",
                       NetworkMode.RESTRICTED, detail="idle 4h")

    def _prepare_attach(self, session: Session) -> None:
        self.prepared.append(session.status.value)

    def _attach_argv(self, session: Session) -> list[str]:
        return ["attach", session.name]

    def _exec_argv(self, session: Session, command: Sequence[str], *, tty: bool) -> list[str]:
        return ["exec", session.name, session.workspace, *command]


@pytest.mark.parametrize("status", [SessionStatus.RUNNING, SessionStatus.DEGRADED])
def test_attach_prepares_then_replaces_the_process(status: SessionStatus) -> None:
    backend = MiniBackend(status)
    assert backend.attach_session("s") == 0
    assert backend.prepared == [status.value]
    assert backend.runner.calls == [("attach", "s")]


def test_exec_runs_the_backends_argv_through_the_runner() -> None:
    backend = MiniBackend(SessionStatus.RUNNING)
    assert backend.exec_in_session("s", ["git", "status"]) == 0
    assert backend.runner.calls == [("exec", "s", "/work", "git", "status")]
    assert backend.prepared == []  # only attach repairs


def test_missing_session_is_not_found_for_both_commands() -> None:
    backend = MiniBackend(None)
    with pytest.raises(SessionNotFoundError, match="no session named 's'") as err:
        backend.attach_session("s")
    assert err.value.hint == "Run: paude sessions"
    with pytest.raises(SessionNotFoundError, match="no session named 's'"):
        backend.exec_in_session("s", ["true"])
    assert backend.runner.calls == []


@pytest.mark.parametrize("status", [SessionStatus.STOPPED, SessionStatus.PENDING,
                                    SessionStatus.ERROR])
def test_a_session_that_does_not_run_is_refused_before_any_command(
        status: SessionStatus) -> None:
    backend = MiniBackend(status)
    entries: list[Callable[[], int]] = [lambda: backend.attach_session("s"),
                                        lambda: backend.exec_in_session("s", ["true"])]
    for enter in entries:
        with pytest.raises(SessionNotRunningError,
                           match=f"session s is {status.value}: idle 4h") as err:
            enter()
        assert err.value.hint == "Run paude in its workspace to start it again."
    assert backend.runner.calls == [] and backend.prepared == []


def test_both_backends_take_attach_and_exec_from_the_shared_flow() -> None:
    for backend in (PodmanBackend, OpenShiftBackend):
        assert issubclass(backend, SessionEntry)
        for method in ("attach_session", "exec_in_session", "_require_running"):
            assert method not in vars(backend), f"{backend.__name__} writes {method} again"
