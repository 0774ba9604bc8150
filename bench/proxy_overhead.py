"""Proxy overhead: 200 small HTTPS requests through paude's squid vs direct.

Everything is local: the fake internet's web server (tests/podman/fakenet.py),
paude's real proxy image running the squid.conf paude renders, and a client
container on the same network that times the requests. Two shapes:

* ``fresh``: a new TCP + TLS connection per request (through the proxy that
  is also a new CONNECT), like separate ``curl`` runs;
* ``keepalive``: one connection (one CONNECT tunnel) reused for all requests.

Usage (root or a rootless user with podman)::

    python bench/proxy_overhead.py [--requests 200] [--rounds 3]

Prints one JSON object; the ratios are proxied / direct wall time (median of
the rounds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "podman"))

import fakenet  # noqa: E402
from fakenet import FakeNet, podman, random_name, wait_for  # noqa: E402

from paude.container import ImageSpec, ensure_image  # noqa: E402
from paude.domains import Allowlist  # noqa: E402
from paude.runner import SystemRunner  # noqa: E402
from paude.squid import render_squid_conf  # noqa: E402

HOST = "allowed.example.org"

CLIENT_PY = r"""
import http.client, json, ssl, sys, time
host, n, proxy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile="/certs/ca.pem")

def conn():
    if proxy == "-":
        return http.client.HTTPSConnection(host, 443, context=ctx, timeout=10)
    c = http.client.HTTPSConnection(proxy, 3128, context=ctx, timeout=10)
    c.set_tunnel(host, 443)
    return c

def get(c):
    c.request("GET", "/bench")
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and b"fakenet https:443" in body, (r.status, body)

out = {}
start = time.perf_counter()
for _ in range(n):
    c = conn(); get(c); c.close()
out["fresh"] = time.perf_counter() - start
c = conn()
start = time.perf_counter()
for _ in range(n):
    get(c)
out["keepalive"] = time.perf_counter() - start
c.close()
print(json.dumps(out))
"""


def _start_proxy(net: FakeNet, workdir: Path) -> str:
    tag = ensure_image(SystemRunner(), ImageSpec(kind="proxy"))
    conf = workdir / "squid.conf"
    conf.write_text(render_squid_conf(Allowlist.parse([HOST, net.subnet])))
    conf.chmod(0o644)
    name = random_name("paude-test-bench-proxy")
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--label",
        fakenet.TEST_LABEL,
        "--network",
        net.network,
        "--dns",
        net.dns_ip,
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        "--security-opt",
        "no-new-privileges",
        "-v",
        f"{conf}:/etc/squid/paude/squid.conf:ro,Z",
        tag,
    )
    net.created.append(("container", name))
    return name


def _cache_log(proxy: str) -> str:
    log = "/var/log/squid/cache.log"
    return podman("exec", "-u", "proxy", proxy, "cat", log, check=False).stdout


def _client(net: FakeNet, requests: int, proxy: str) -> dict[str, float]:
    image = fakenet.ensure_image()
    out = podman(
        "run",
        "--rm",
        "--label",
        fakenet.TEST_LABEL,
        "--network",
        net.network,
        "--dns",
        net.dns_ip,
        "-v",
        f"{net.ca.ca_cert.parent}:/certs:ro,z",
        image,
        "python3",
        "-c",
        CLIENT_PY,
        HOST,
        str(requests),
        proxy,
        timeout=600,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def measure(requests: int, rounds: int) -> dict[str, object]:
    """Run the benchmark and return its numbers."""
    workdir = Path(tempfile.mkdtemp(prefix="paude-bench-", dir="/tmp"))
    workdir.chmod(0o755)
    net = fakenet.start_fakenet(workdir, fakenet.ensure_ca(fakenet.CA_DIR))
    try:
        proxy = _start_proxy(net, workdir)
        proxy_ip = json.loads(podman("inspect", proxy).stdout)[0]["NetworkSettings"]["Networks"][
            net.network
        ]["IPAddress"]
        wait_for("squid to listen", lambda: "Accepting HTTP" in _cache_log(proxy))
        _client(net, 5, proxy_ip)  # warm-up: squid's DNS cache, page cache
        direct = [_client(net, requests, "-") for _ in range(rounds)]
        proxied = [_client(net, requests, proxy_ip) for _ in range(rounds)]
    finally:
        net.close()
    summary: dict[str, object] = {"requests": requests, "rounds": rounds}
    for shape in ("fresh", "keepalive"):
        d = statistics.median(r[shape] for r in direct)
        p = statistics.median(r[shape] for r in proxied)
        summary[shape] = {
            "direct_s": round(d, 3),
            "proxied_s": round(p, 3),
            "ratio": round(p / d, 2),
            "per_request_overhead_ms": round((p - d) / requests * 1000, 2),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.requests, args.rounds), indent=2))


if __name__ == "__main__":
    main()
