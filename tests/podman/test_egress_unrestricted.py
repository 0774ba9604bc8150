"""``--allow-network``: the agent reaches the web server directly, the user is
warned loudly, and ``paude sessions`` shows the session as unrestricted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from egress_session import MODES, Sandbox, open_sandbox
from fakenet import FakeNet, fakenet, random_name  # noqa: F401 - fixture
from test_egress import curl, web_hits


@pytest.fixture(scope="module", params=MODES)
def box(request: pytest.FixtureRequest, fakenet: FakeNet) -> Iterator[Sandbox]:  # noqa: F811
    yield from open_sandbox(fakenet, request)


def test_allow_network_reaches_the_web_server_directly(box: Sandbox) -> None:
    name = box.start("--allow-network")
    marker = random_name("direct")
    result = curl(box, name, "--noproxy", "*", f"http://{box.net.web_ip}/{marker}")
    assert f"fakenet http:80 host={box.net.web_ip} path=/{marker}" in result.stdout, result
    assert web_hits(box.net, marker)
    env = box.exec(name, "env").stdout
    assert "HTTPS_PROXY" not in env and "https_proxy" not in env

    session = box.session(name)
    assert session["network"] == "unrestricted" and session["status"] == "running"
    roles = box.podman(
        "ps", "-a", "--filter", f"label=paude.io/session={name}", "--format", "{{.Labels}}"
    ).stdout
    assert "paude.io/role:proxy" not in roles


def test_allow_network_warning_cannot_be_missed(box: Sandbox) -> None:
    name = box.start("--allow-network")
    stderr = box.started[name].stderr
    assert "UNRESTRICTED NETWORK" in stderr, stderr
    assert "can reach ANY address" in stderr, stderr
