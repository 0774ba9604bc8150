"""The ``Backend`` protocol and the data that crosses it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from paude.auth import ModelAuth
from paude.domains import Allowlist
from paude.errors import SessionNotFoundError, SessionNotRunningError
from paude.naming import NetworkMode
from paude.plan import Plan
from paude.proxylog import BlockedDomain
from paude.trust.paths import GuardMount

__all__ = ["NetworkMode"]  # re-exported: it lives in naming.py (no heavy imports)


class SessionStatus(StrEnum):
    """Where a session is in its life."""

    RUNNING = "running"
    DEGRADED = "degraded"  # the agent runs but its proxy does not: no network at all
    STOPPED = "stopped"
    PENDING = "pending"
    ERROR = "error"


@dataclass(frozen=True)
class Session:
    """A session as discovered from the backend's own labels."""

    name: str
    backend: str
    status: SessionStatus
    workspace: str
    created_at: str  # ISO 8601, UTC
    network: NetworkMode
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        """Return the stable JSON shape of ``paude sessions --json``."""
        return {
            "name": self.name,
            "backend": self.backend,
            "status": self.status.value,
            "workspace": self.workspace,
            "created_at": self.created_at,
            "network": self.network.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Credentials:
    """Host paths that reach the agent read-only (absent ones are skipped).

    Never ``~/.ssh`` and never GitHub CLI configuration: there is no field for them.
    """

    gcloud_dir: Path | None = None
    gitconfig: Path | None = None
    claude_dir: Path | None = None
    claude_json: Path | None = None
    # The entries of claude_dir that exist and may reach the agent (paude.claude_home).
    claude_entries: tuple[Path, ...] = ()


@dataclass(frozen=True)
class SessionSpec:
    """Everything a backend needs to create a session.

    ``allowed_domains`` is parsed once, here: a plain sequence of entries is
    turned into an ``Allowlist`` (raising ``ValueError`` on a bad entry), and
    every builder downstream takes that normalised value.
    """

    name: str
    workspace: Path
    allowed_domains: Allowlist
    allow_network: bool = False
    yolo: bool = False
    claude_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    credentials: Credentials = Credentials()
    rebuild: bool = False
    ca_bundle: bytes | None = None  # extra CA certificates (PEM), trusted in the image
    base_image: str | None = None  # a devcontainer's ``image`` replaces the configured base
    dockerfile: str | None = None  # a devcontainer's Dockerfile text, built as the base
    # Workspace paths mounted over themselves (git metadata, sandbox config).
    guard_mounts: tuple[GuardMount, ...] = ()
    # The model credential: held by the session's gateway, never by the agent.
    model_auth: ModelAuth | None = None
    model_env: Mapping[str, str] = field(default_factory=dict)  # agent -> gateway (not secret)
    # --allow-network --pass-credentials: the old way, credentials inside the agent.
    pass_credentials: bool = False
    claude_json_seed: str = "{}\n"  # the filtered ~/.claude.json the agent starts with

    @property
    def network(self) -> NetworkMode:
        """Return the network mode this session is started with."""
        return NetworkMode.of(self.allow_network)

    def __post_init__(self) -> None:
        if not isinstance(self.allowed_domains, Allowlist):
            object.__setattr__(self, "allowed_domains", Allowlist.parse(self.allowed_domains))


class SessionProxy(Protocol):
    """The running proxy of one session: ``paude blocked`` and ``paude allow``."""

    def blocked(self) -> list[BlockedDomain]:
        """Return the destinations the proxy denied, the most recently denied first.

        Raises:
            PaudeError: the proxy does not run, so its log cannot be read.
        """
        ...

    def allow(self, entries: Sequence[str]) -> tuple[str, ...]:
        """Add ``entries`` to the live allowlist, the agent left running; return the allowlist.

        The change lasts until the session's proxy is recreated from its
        configuration (a new start re-applies the configured allowlist).

        Raises:
            ValueError: an entry is not a valid allowlist entry.
            PaudeError: the proxy does not run.
        """
        ...


def session_not_found(name: str) -> SessionNotFoundError:
    """Return the one "no session named" error of every backend and command."""
    return SessionNotFoundError(f"no session named {name!r}", hint="Run: paude sessions")


def require_session(session: Session | None, name: str, *, running: bool = False) -> Session:
    """Return ``session`` (what a backend's ``find_session(name)`` found), or raise why not.

    With ``running``, a degraded session counts (attach and exec repair or
    still reach it); a stopped, pending or failed one does not.

    Raises:
        SessionNotFoundError: nothing of that session exists.
        SessionNotRunningError: ``running`` and the session does not run.
    """
    if session is None:
        raise session_not_found(name)
    if running and session.status not in (SessionStatus.RUNNING, SessionStatus.DEGRADED):
        detail = f": {session.detail}" if session.detail else ""
        raise SessionNotRunningError(f"session {name} is {session.status.value}{detail}",
                                     hint="Run paude in its workspace to start it again.")
    return session


class Backend(Protocol):
    """A place where sessions run.

    Contract for every implementation:
    - ``find_session`` and ``list_sessions`` discover sessions only from labels
      on the backend's own objects (never from local state).
    - ``start_session`` is idempotent: on an existing, partly created or
      degraded session it converges to a running one without losing work.
    - ``stop_session`` removes every object of the session and nothing else.
    """

    name: str

    def plan_session(self, spec: SessionSpec) -> Plan:
        """REQUIRED. Return what ``start_session`` would do, changing nothing."""
        ...

    def start_session(self, spec: SessionSpec) -> Session:
        """REQUIRED. Create (or repair) the session and return it running."""
        ...

    def attach_session(self, name: str) -> int:
        """REQUIRED. Attach the terminal to the session's tmux; return its exit code.

        Written once, in ``backends.entry.SessionEntry``: backends supply the argv.
        """
        ...

    def exec_in_session(self, name: str, argv: Sequence[str]) -> int:
        """REQUIRED. Run ``argv`` in the agent container, passing stdio and exit code.

        Written once, in ``backends.entry.SessionEntry``: backends supply the argv.
        """
        ...

    def stop_session(self, name: str) -> None:
        """REQUIRED. Remove the session's objects.

        Raises:
            SessionNotFoundError: nothing of that session exists.
        """
        ...

    def find_session(self, name: str) -> Session | None:
        """REQUIRED. Return the session called ``name``, or ``None``."""
        ...

    def list_sessions(self) -> list[Session]:
        """REQUIRED. Return every session of this backend, newest first."""
        ...

    def sync_workspace(self, name: str, direction: str = "both") -> None:
        """OPTIONAL. Sync files with a remote workspace (a no-op where it is a bind mount)."""
        ...

    def session_proxy(self, name: str) -> SessionProxy:
        """REQUIRED. Return the proxy of session ``name`` (found by labels).

        Raises:
            SessionNotFoundError: no such session, or it has no proxy
                (``--allow-network``).
        """
        ...


class Reporter(Protocol):
    """Where backends send progress and warnings (stderr in the CLI)."""

    def status(self, message: str) -> AbstractContextManager[None]:
        """Show ``message`` while a long step runs."""
        ...

    def warn(self, message: str) -> None:
        """Print a warning once."""
        ...

    def follow(self, what: str, *, done: str) -> AbstractContextManager[Callable[[str], None]]:
        """Show a build's or push's live line while the block feeds it output lines.

        ``what`` names the work ("Building the agent image X"); ``done`` is the
        summary's start on success ("Built the agent image X").
        """
        ...

    def info(self, message: str) -> None:
        """Print a line of progress."""
        ...


class NullReporter:
    """A reporter that records messages (for tests and quiet mode)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """Record ``message``."""
        self.messages.append(message)
        yield

    def warn(self, message: str) -> None:
        """Record ``message``."""
        self.messages.append(f"warning: {message}")

    @contextmanager
    def follow(self, what: str, *, done: str) -> Iterator[Callable[[str], None]]:
        """Record ``what``, then ``done`` once the block succeeds (the lines are dropped)."""
        self.messages.append(what)
        yield lambda line: None
        self.messages.append(done)

    def info(self, message: str) -> None:
        """Record ``message``."""
        self.messages.append(message)


@runtime_checkable
class KeepsWorkspace(Protocol):
    """A backend whose sessions keep a remote workspace after ``stop`` (openshift)."""

    def remove_workspace(self, name: str) -> list[str]:
        """Delete the session's kept workspace; return the names of what was deleted."""
        ...
