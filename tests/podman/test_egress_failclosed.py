"""Fail closed: with the proxy stopped the agent has no network at all, and
``paude sessions`` says the session is degraded; ``paude --detach`` repairs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from egress_session import MODES, Sandbox, open_sandbox
from fakenet import FakeNet, fakenet, random_name, wait_for  # noqa: F401 - fixture
from test_egress import ALLOWED, CONNECT_PY, DENIED, UDP_DNS_PY, curl, web_hits


@pytest.fixture(scope="module", params=MODES)
def box(request: pytest.FixtureRequest, fakenet: FakeNet) -> Iterator[Sandbox]:  # noqa: F811
    yield from open_sandbox(fakenet, request)


def _flags(box: Sandbox) -> tuple[str, ...]:
    return ("--allow-domain", ALLOWED, "--allow-domain", box.net.subnet)


def _state(box: Sandbox, container: str) -> str:
    return box.podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()


def test_stopped_proxy_means_no_network_and_degraded(box: Sandbox) -> None:
    name = box.start(*_flags(box))
    proxy = f"paude-{name}-proxy"
    assert f"host={ALLOWED}" in curl(box, name, f"https://{ALLOWED}/before").stdout  # control
    box.podman("stop", proxy)
    wait_for("the proxy to stop", lambda: _state(box, proxy) == "exited", deadline=30)

    session = box.session(name)
    assert session["status"] == "degraded", session
    marker = random_name("closed")
    for args in (
        (f"https://{ALLOWED}/{marker}",),
        (f"http://{ALLOWED}/{marker}",),
        ("--noproxy", "*", f"http://{box.net.web_ip}/{marker}"),
        ("--noproxy", "*", "-k", f"https://{box.net.web_ip}/{marker}"),
    ):
        result = curl(box, name, *args)
        assert result.returncode != 0 and "fakenet" not in result.stdout, result
    for port in (80, 443, 53):
        out = box.paude(
            "exec", name, "--", "python3", "-c", CONNECT_PY, box.net.web_ip, str(port), check=False
        ).stdout
        assert "FAILED" in out, out
    assert box.exec(name, f"getent hosts {ALLOWED}").returncode != 0
    query = f"{marker}.{DENIED}"
    udp = box.paude(
        "exec", name, "--", "python3", "-c", UDP_DNS_PY, box.net.dns_ip, query, check=False
    ).stdout
    assert "FAILED" in udp, udp
    assert not [q for q in box.net.dns_queries() if marker in q]
    assert web_hits(box.net, marker) == []

    agent_started = box.podman(
        "inspect", "--format", "{{.State.StartedAt}}", f"paude-{name}-agent"
    ).stdout
    box.paude("--detach", "--name", name, *_flags(box), workspace=box.root / "workspaces" / name)
    assert box.session(name)["status"] == "running"
    wait_for(
        "the proxy to answer again",
        lambda: f"host={ALLOWED}" in curl(box, name, f"https://{ALLOWED}/after").stdout,
        deadline=30,
    )
    assert (
        box.podman("inspect", "--format", "{{.State.StartedAt}}", f"paude-{name}-agent").stdout
        == agent_started
    )
