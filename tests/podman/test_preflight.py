"""A first start behind a TLS-intercepting proxy without its CA fails before the build.

The proxy is the test's own (tests/podman/intercepting_proxy.py) on loopback
with its own CA; it never connects anywhere, so nothing leaves this machine.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from intercepting_proxy import InterceptingProxy

from conftest import PaudeCLI
from paude.container.image import ImageSpec
from paude.errors import ImageBuildError
from paude.images.preflight import NPM_REGISTRY, Probe, build_probes, run_probe


@pytest.fixture
def proxy() -> Iterator[InterceptingProxy]:
    server = InterceptingProxy()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_first_start_behind_an_intercepting_proxy_fails_before_building(
    paude_cli: PaudeCLI, proxy: InterceptingProxy
) -> None:
    # A setup command no image has yet: this start has to build the agent image.
    paude_cli.configure({"image": {"setup_command": f"echo {secrets.token_hex(4)}"}})
    paude_cli.extra_env["HTTPS_PROXY"] = proxy.url
    logs = paude_cli.home / ".local" / "state" / "paude" / "logs"
    before = set(logs.glob("build-paude-agent-*")) if logs.exists() else set()
    done = paude_cli.run("--detach", check=False)
    assert done.returncode == 1, done.stderr
    err = done.stderr
    assert f"HTTPS to registry.npmjs.org through the proxy {proxy.url} shows a certificate" \
           " this build would not trust" in err
    assert "Hint: Give paude the proxy's CA: export PAUDE_EXTRA_CA_CERTS=" in err
    assert "Traceback" not in err
    assert proxy.connects == ["registry.npmjs.org:443"]  # asked once, never forwarded
    after = set(logs.glob("build-paude-agent-*")) if logs.exists() else set()
    assert after == before  # no build started
    import json

    listed = json.loads(paude_cli.run("sessions", "--json").stdout)
    assert [s for s in listed if s["workspace"] == str(paude_cli.workspace)] == []


def test_with_the_proxys_ca_the_probe_passes(proxy: InterceptingProxy) -> None:
    run_probe(Probe(NPM_REGISTRY, proxy.url), proxy.ca_pem)
    assert proxy.connects == ["registry.npmjs.org:443"]


def test_with_another_ca_configured_the_probe_says_that_ca_does_not_sign_it(
    proxy: InterceptingProxy,
) -> None:
    other = InterceptingProxy()
    try:
        with pytest.raises(ImageBuildError, match="the configured extra CA does not sign it"):
            run_probe(Probe(NPM_REGISTRY, proxy.url), other.ca_pem)
    finally:
        other.close()


def test_probes_only_with_a_proxy_or_a_ca_and_honour_no_proxy() -> None:
    agent = ImageSpec(kind="agent")
    assert build_probes([agent], {}) == []
    assert build_probes([ImageSpec(kind="proxy")], {"HTTPS_PROXY": "http://p:3128"}) == []
    assert build_probes([agent], {"https_proxy": "http://p:3128"}) == [
        Probe(NPM_REGISTRY, "http://p:3128")]
    assert build_probes([agent], {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": ".npmjs.org"}) == [
        Probe(NPM_REGISTRY, None)]
