"""Stopping a podman session: what is listed, what is removed, in which order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import RecordingRunner, reply
from paude.backends.podman.removal import (
    build_container_list_argv,
    build_network_names_argv,
    run_remove_session,
)
from paude.backends.podman.state import squid_conf_path
from paude.errors import SessionNotFoundError


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_networks_and_containers_are_found_by_label() -> None:
    for argv in (build_network_names_argv("s"), build_container_list_argv("s")):
        assert flag_values(argv, "--filter") == ["label=app.kubernetes.io/managed-by=paude",
                                                 "label=paude.io/session=s"]


def test_stop_removes_all_containers_in_one_call_then_the_networks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    conf = squid_conf_path("s")
    conf.parent.mkdir(parents=True)
    conf.write_text("x")
    runner = RecordingRunner(reply(("podman", "ps"), json.dumps([{"Names": ["paude-s-agent"]},
                                                             {"Names": ["paude-s-proxy"]}])),
                             reply(("podman", "network", "ls"), "paude-s\npaude-s-egress\n"))
    run_remove_session(runner, "s")
    removals = [c for c in runner.calls if c[1] in {"rm", "network"} and "rm" in c[:3]]
    assert removals == [
        ("podman", "rm", "-f", "-t", "0", "--ignore", "paude-s-agent", "paude-s-proxy"),
        ("podman", "network", "rm", "-f", "-t", "0", "paude-s", "paude-s-egress")]
    assert not conf.exists()


def test_stop_of_nothing_says_no_such_session() -> None:
    runner = RecordingRunner()
    with pytest.raises(SessionNotFoundError, match="no session named 'ghost'"):
        run_remove_session(runner, "ghost")
    assert len(runner.calls) == 3  # the three listings, nothing removed


SECRET_OF_S = json.dumps([{"Spec": {"Name": "paude-s-gateway", "Labels": {
    "app.kubernetes.io/managed-by": "paude", "paude.io/session": "s"}}}])


def test_stop_removes_the_gateway_secret_even_without_anything_else() -> None:
    runner = RecordingRunner(reply(("podman", "secret", "inspect"), SECRET_OF_S))
    run_remove_session(runner, "s")
    assert runner.commands("podman", "secret") == [
        ("podman", "secret", "inspect", "paude-s-gateway"),
        ("podman", "secret", "rm", "paude-s-gateway")]


def test_stop_leaves_a_secret_of_that_name_that_is_not_the_sessions() -> None:
    other = json.dumps([{"Spec": {"Name": "paude-s-gateway", "Labels": {}}}])
    runner = RecordingRunner(reply(("podman", "secret", "inspect"), other),
                             reply(("podman", "network", "ls"), "paude-s\n"))
    run_remove_session(runner, "s")
    assert runner.commands("podman", "secret", "rm") == []
    assert runner.commands("podman", "network", "rm")


def test_a_failed_listing_fails_the_stop() -> None:
    from paude.errors import CommandFailedError

    runner = RecordingRunner(reply(("podman", "secret", "inspect"), "", 125,
                                   "Error: database is locked"))
    with pytest.raises(CommandFailedError, match="database is locked"):
        run_remove_session(runner, "s")
    assert [c for c in runner.calls if "rm" in c[:3]] == []
