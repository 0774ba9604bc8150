"""Turn ``podman ps --format json`` output into sessions."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paude.backends.base import Session, SessionStatus
from paude.facts import STOP_CODES
from paude.naming import (
    LABEL_NETWORK,
    LABEL_ROLE,
    LABEL_SESSION,
    LABEL_TIMEOUT_IDLE,
    LABEL_TIMEOUT_MAX,
    LABEL_WORKSPACE,
    NetworkMode,
)


@dataclass(frozen=True)
class Container:
    """The fields of one podman container that paude reads."""

    name: str
    state: str  # "running", "exited", "created", ...
    labels: dict[str, str]
    created: int  # unix seconds
    exit_code: int = 0  # of its last run, when it is not running

    @property
    def running(self) -> bool:
        """Answer whether the container runs."""
        return self.state == "running"


def parse_ps_json(text: str) -> list[Container]:
    """Parse ``podman ps -a --format json``; unknown keys are ignored."""
    data: list[dict[str, Any]] = json.loads(text or "[]") or []
    return [
        Container(
            name=(item.get("Names") or [""])[0],
            state=str(item.get("State", "")).lower(),
            labels=dict(item.get("Labels") or {}),
            created=int(item.get("Created", 0) or 0),
            exit_code=int(item.get("ExitCode", 0) or 0),
        )
        for item in data
    ]


def stop_reason(agent: Container) -> str:
    """Return why the agent's container stopped: ``idle 4h``, ``max 1d``, ``oom``, or its state."""
    reason = STOP_CODES.get(agent.exit_code)
    label = {"idle": LABEL_TIMEOUT_IDLE, "max": LABEL_TIMEOUT_MAX}.get(reason or "")
    if label is not None:
        return f"{reason} {agent.labels.get(label, '')}".strip()
    if reason is not None:
        return reason
    return f"the agent container is {agent.state}"


def _status(agent: Container | None, proxy: Container | None) -> tuple[SessionStatus, str]:
    if agent is None:
        return SessionStatus.ERROR, "the agent container is missing"
    if not agent.running:
        return SessionStatus.STOPPED, stop_reason(agent)
    restricted = NetworkMode.from_label(agent.labels.get(LABEL_NETWORK)) is NetworkMode.RESTRICTED
    if restricted and (proxy is None or not proxy.running):
        return SessionStatus.DEGRADED, "the proxy is not running: the agent has no network"
    return SessionStatus.RUNNING, ""


def group_sessions(containers: list[Container]) -> list[Session]:
    """Group containers by their session label; newest session first."""
    by_session: dict[str, dict[str, Container]] = defaultdict(dict)
    for container in containers:
        name = container.labels.get(LABEL_SESSION)
        if name:
            by_session[name][container.labels.get(LABEL_ROLE, "")] = container
    sessions = []
    for name, roles in by_session.items():
        agent, proxy = roles.get("agent"), roles.get("proxy")
        status, detail = _status(agent, proxy)
        anchor = agent or proxy or next(iter(roles.values()))
        sessions.append(
            Session(
                name=name,
                backend="podman",
                status=status,
                workspace=anchor.labels.get(LABEL_WORKSPACE, ""),
                created_at=anchor.labels.get("paude.io/created")
                or datetime.fromtimestamp(anchor.created, UTC).isoformat(),
                network=NetworkMode.from_label(anchor.labels.get(LABEL_NETWORK)),
                detail=detail,
            )
        )
    return sorted(sessions, key=lambda s: s.created_at, reverse=True)
