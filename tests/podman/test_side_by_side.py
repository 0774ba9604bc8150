"""Sessions side by side: a session's proxy keeps reaching out (fresh DNS
lookups and web requests) while other containers come and go on podman's
default network and a second session starts and stops. Rootful and rootless.

The proxy's resolver and the fake web server sit behind the proxy's gateway,
so every probe below needs the proxy's way out. Each probe asks for a name
nobody asked for before, so squid must send a new DNS query: a cached answer
cannot hide a stall. Traffic goes only to the test's own fake internet.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from egress_session import MODES, Sandbox, open_sandbox
from fakenet import BASE_IMAGE, TEST_LABEL, FakeNet, fakenet, random_name  # noqa: F401

DOMAIN = ".allowed.example.org"  # the fake DNS answers every subdomain
OUTSIDERS = 4  # other containers the user runs on podman's default network


@pytest.fixture(scope="module", params=MODES)
def box(request: pytest.FixtureRequest, fakenet: FakeNet) -> Iterator[Sandbox]:  # noqa: F811
    yield from open_sandbox(fakenet, request)


def _fetch(box: Sandbox, session: str) -> subprocess.CompletedProcess[str]:
    """GET a never-asked name through the session's proxy (a fresh DNS lookup)."""
    url = f"http://{random_name('fresh')}{DOMAIN}/"
    argv = ["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "-w", "codes %{http_code}", url]
    return box.paude("exec", session, "--", *argv, check=False, timeout=60)


def _gateway_view(box: Sandbox, session: str) -> str:
    """What the proxy believes its gateway's MAC is, and what it is (for a failure)."""
    proxy = f"paude-{session}-proxy"
    arp = box.podman("exec", proxy, "cat", "/proc/net/arp", check=False).stdout
    route = box.podman("exec", proxy, "cat", "/proc/net/route", check=False).stdout
    nets = json.loads(box.podman("inspect", proxy).stdout)[0]["NetworkSettings"]["Networks"]
    bridges = []
    for net in nets:
        iface = box.podman("network", "inspect", net, "--format", "{{.NetworkInterface}}",
                           check=False).stdout.strip()
        read = ["cat", f"/sys/class/net/{iface}/address"]
        if box.mode == "rootless":
            mac = box.podman("unshare", "--rootless-netns", *read, check=False).stdout
        else:
            mac = subprocess.run(read, capture_output=True, text=True, check=False).stdout
        bridges.append(f"{net} ({iface}): {mac.strip()}")
    # Egress without any DNS: a TCP connection to the fake web server's address.
    tcp = box.podman("exec", proxy, "timeout", "3", "bash", "-c",
                     f"exec 3<>/dev/tcp/{box.net.web_ip}/80 && echo connected", check=False)
    return (f"proxy arp:\n{arp}\nproxy routes:\n{route}\nbridges:\n" + "\n".join(bridges)
            + f"\nTCP to {box.net.web_ip}:80 without DNS: {tcp.stdout.strip() or 'FAILED'}")


def _assert_reaches_out(box: Sandbox, session: str, after: str) -> None:
    got = _fetch(box, session)
    assert "codes 200" in got.stdout, (
        f"after {after}, session {session}'s proxy failed a fresh request: "
        f"{got.stdout} {got.stderr}\n{_gateway_view(box, session)}"
    )


def _outsider(box: Sandbox) -> str:
    name = random_name("paude-test-outsider")
    box.podman("run", "-d", "--name", name, "--label", TEST_LABEL, "--network", "podman",
               BASE_IMAGE, "sleep", "600")
    return name


def test_a_session_keeps_reaching_out_while_others_come_and_go(box: Sandbox) -> None:
    allow = ("--allow-domain", DOMAIN, "--allow-domain", box.net.subnet)
    # The user already runs other containers on podman's default network.
    before = [_outsider(box) for _ in range(OUTSIDERS)]
    outsiders = list(before)
    try:
        first = box.start(*allow)
        _assert_reaches_out(box, first, "the start")
        second = box.start(*allow)
        _assert_reaches_out(box, first, "a second session started")
        _assert_reaches_out(box, second, "its own start")
        box.podman("rm", "-f", "-t", "0", *before)
        outsiders = []
        _assert_reaches_out(box, first, "the other containers left")
        outsiders = [_outsider(box) for _ in range(OUTSIDERS)]
        _assert_reaches_out(box, first, "new containers joined")
        box.stop(second)
        _assert_reaches_out(box, first, "the second session stopped")
    finally:
        if outsiders:
            box.podman("rm", "-f", "-t", "0", *outsiders, check=False)
