"""Claude Code itself, in the sandbox, through the session's gateway, against a stand-in API.

The stand-in (tests/podman/fakenet_server.py) answers ``POST /v1/messages``
at ``https://api.anthropic.com`` (the fake DNS points the gateway there), with
a certificate from the test CA that ``PAUDE_EXTRA_CA_CERTS`` installs into
the agent image. Observed requests of Claude Code 2.1.332 for ``claude -p``:
GET /api/claude_code/policy_limits, /api/claude_code/settings,
/api/claude_cli/bootstrap, POST /api/eval/..., POST /api/event_logging/v2/batch
and the one that matters, POST /v1/messages?beta=true with ``"stream": true``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from egress_session import API_KEY, MODES, Sandbox, open_sandbox
from fakenet import FakeNet, fakenet  # noqa: F401 - fixture
from fakenet_server import CANNED


@pytest.fixture(scope="module", params=MODES)
def box(request: pytest.FixtureRequest, fakenet: FakeNet) -> Iterator[Sandbox]:  # noqa: F811
    yield from open_sandbox(fakenet, request)


def test_claude_print_answers_through_the_gateway(box: Sandbox) -> None:
    name = box.start("--allow-domain", box.net.subnet)
    result = box.paude("exec", name, "--", "claude", "-p", "hello", check=False, timeout=300)
    assert result.returncode == 0, result
    assert result.stdout.strip() == CANNED, result

    messages = [
        r
        for r in box.net.web_requests()
        if r["method"] == "POST" and str(r["path"]).startswith("/v1/messages")
    ]
    assert messages, box.net.web_requests()
    request = messages[-1]
    assert request["host"] == "api.anthropic.com" and request["listener"] == "https:443"
    headers = {str(k).lower(): v for k, v in dict(request["headers"]).items()}  # type: ignore[call-overload]
    assert headers.get("x-api-key") == API_KEY
    assert request["stream"] is True

    log = box.podman(
        "exec", "-u", "proxy", f"paude-{name}-proxy", "cat", "/var/log/squid/access.log"
    ).stdout
    # The model call went through the gateway, not through squid (whose
    # allowlist does not have api.anthropic.com).
    assert "api.anthropic.com" not in log, log
