"""Parsing recorded ``podman ps --format json`` output into sessions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paude.backends.base import SessionStatus
from paude.backends.podman.parse import group_sessions, parse_ps_json

CAPTURE = Path(__file__).parent / "captures" / "podman-ps-two-sessions.json"


def capture(states: dict[str, str] | None = None) -> str:
    data: list[dict[str, Any]] = json.loads(CAPTURE.read_text())
    for item in data:
        item["State"] = (states or {}).get(item["Names"][0], item["State"])
    return json.dumps(data)


def test_capture_parses_into_containers_with_labels() -> None:
    containers = parse_ps_json(CAPTURE.read_text())
    assert {c.name for c in containers} == {
        "paude-warm1-proxy", "paude-warm1-agent",
        "paude-ws1-c23e08-proxy", "paude-ws1-c23e08-agent"}
    agent = next(c for c in containers if c.name == "paude-ws1-c23e08-agent")
    assert agent.labels["paude.io/workspace"] == "/tmp/ws1"
    assert agent.created > 1_700_000_000


def test_sessions_are_grouped_by_label_newest_first() -> None:
    sessions = group_sessions(parse_ps_json(CAPTURE.read_text()))
    assert [s.name for s in sessions] == ["ws1-c23e08", "warm1"]
    first = sessions[0]
    assert first.workspace == "/tmp/ws1"
    assert first.network == "restricted"
    assert first.created_at.startswith("2026-")
    assert first.status is SessionStatus.STOPPED


@pytest.mark.parametrize(
    ("agent", "proxy", "status", "detail"),
    [
        ("running", "running", SessionStatus.RUNNING, ""),
        ("running", "exited", SessionStatus.DEGRADED, "the proxy is not running"),
        ("exited", "running", SessionStatus.STOPPED, "the agent container is exited"),
    ],
)
def test_status_follows_agent_and_proxy(
    agent: str, proxy: str, status: SessionStatus, detail: str
) -> None:
    text = capture({"paude-ws1-c23e08-agent": agent, "paude-ws1-c23e08-proxy": proxy})
    session = next(s for s in group_sessions(parse_ps_json(text)) if s.name == "ws1-c23e08")
    assert session.status is status
    assert detail in session.detail


def test_missing_proxy_degrades_only_restricted_sessions() -> None:
    data = [d for d in json.loads(capture({"paude-ws1-c23e08-agent": "running"}))
            if d["Names"][0] != "paude-ws1-c23e08-proxy"]
    session = next(s for s in group_sessions(parse_ps_json(json.dumps(data)))
                   if s.name == "ws1-c23e08")
    assert session.status is SessionStatus.DEGRADED
    for item in data:
        item["Labels"]["paude.io/network"] = "unrestricted"
    session = next(s for s in group_sessions(parse_ps_json(json.dumps(data)))
                   if s.name == "ws1-c23e08")
    assert session.status is SessionStatus.RUNNING


def test_to_dict_has_stable_keys() -> None:
    session = group_sessions(parse_ps_json(CAPTURE.read_text()))[0]
    assert list(session.to_dict()) == ["name", "backend", "status", "workspace",
                                       "created_at", "network", "detail"]


def test_empty_output_means_no_sessions() -> None:
    assert group_sessions(parse_ps_json("")) == []
    assert group_sessions(parse_ps_json("[]")) == []


@pytest.mark.parametrize(("code", "labels", "detail"), [
    (80, {"paude.io/timeout-idle": "4h"}, "idle 4h"),
    (81, {"paude.io/timeout-max": "1d"}, "max 1d"),
    (82, {}, "oom"),
    (0, {}, "the agent container is exited"),
])
def test_a_stopped_agent_says_why(code: int, labels: dict[str, str], detail: str) -> None:
    data: list[dict[str, Any]] = json.loads(CAPTURE.read_text())
    for item in data:
        if item["Names"][0] == "paude-ws1-c23e08-agent":
            item.update(State="exited", ExitCode=code)
            item["Labels"].update(labels)
    session = next(s for s in group_sessions(parse_ps_json(json.dumps(data)))
                   if s.name == "ws1-c23e08")
    assert (session.status, session.detail) == (SessionStatus.STOPPED, detail)
