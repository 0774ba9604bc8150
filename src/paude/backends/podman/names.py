"""Podman object names of a session, and the attach and exec commands (no heavy
imports: the quick reattach and exec use this module)."""

from __future__ import annotations

from paude.facts import TMUX_SESSION

PODMAN = "podman"


class Names:
    """The podman object names of one session."""

    __slots__ = ("session",)

    def __init__(self, session: str) -> None:
        self.session = session

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Names) and other.session == self.session

    def __hash__(self) -> int:
        return hash(self.session)

    def __repr__(self) -> str:
        return f"Names({self.session!r})"

    @property
    def network(self) -> str:
        """The session's internal network."""
        return f"paude-{self.session}"

    @property
    def egress_network(self) -> str:
        """The session's own routed network: the proxy's (or an unrestricted
        agent's) only way out, shared with no other container."""
        return f"paude-{self.session}-egress"

    @property
    def agent(self) -> str:
        """The agent container."""
        return f"paude-{self.session}-agent"

    @property
    def proxy(self) -> str:
        """The proxy container."""
        return f"paude-{self.session}-proxy"

    @property
    def gateway(self) -> str:
        """The model gateway container, and the podman secret holding its credentials."""
        return f"paude-{self.session}-gateway"


def build_attach_argv(names: Names) -> list[str]:
    """Return argv attaching the terminal to the session's tmux."""
    return [PODMAN, "exec", "-it", names.agent, "tmux", "attach", "-t", TMUX_SESSION]


def build_exec_argv(
    names: Names, argv: list[str], *, tty: bool, workdir: str | None = None
) -> list[str]:
    """Return argv running ``argv`` in the agent, non-interactively unless ``tty``.

    Without ``workdir`` it runs in the container's working directory, the
    workspace (``podman run -w``).
    """
    flags = ["-it"] if tty else ["-i"]
    where = ["-w", workdir] if workdir else []
    return [PODMAN, "exec", *flags, *where, names.agent, *argv]
