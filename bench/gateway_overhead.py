"""Model gateway overhead: the same stand-in API called directly and through paude's gateway.

Everything runs on loopback: a TLS stand-in of the Anthropic Messages API
(tests/podman/fakenet_server.py's handler, with a throwaway certificate),
and paude's real gateway (``python -m paude.gateway.app``, aiohttp) in
API-key mode in front of it. One client, one keep-alive connection per
path, alternating rounds:

* ``request``: a non-streamed ``POST /v1/messages``, whole answer read;
* ``first_byte``: a streamed one (``"stream": true``), until the first body byte.

Usage::

    python bench/gateway_overhead.py [--requests 300] [--rounds 3]

Prints one JSON object: medians in milliseconds, the ratio gateway / direct
and the milliseconds the gateway adds, per shape.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests" / "podman")]

import fakenet_server  # noqa: E402

from paude.gateway.policy import READY_LINE, AuthMode, GatewayConfig  # noqa: E402

CLIENT_SOURCE = "127.0.0.2"  # the gateway refuses its network's first address (a bridge)
BODY = json.dumps({"model": "claude-bench", "max_tokens": 5,
                   "messages": [{"role": "user", "content": "hi"}]})
STREAM_BODY = json.dumps({"model": "claude-bench", "max_tokens": 5, "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]})


class QuietHandler(fakenet_server.Handler):
    listener = "https:bench"

    def _log(self, body: bytes, **extra: object) -> None:
        return


def make_cert(directory: Path) -> Path:
    """Return a self-signed certificate (and key beside it) for 127.0.0.1 / localhost."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert


def start_stand_in(cert: Path) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, cert.parent / "key.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gateway(
    directory: Path, cert: Path, upstream_port: int
) -> tuple[subprocess.Popen[str], int]:
    config = GatewayConfig(AuthMode.API_KEY, ("127.0.0.0/8",), secret="sk-bench-not-a-key",
                           anthropic_upstream=f"https://127.0.0.1:{upstream_port}")
    path = directory / "gateway.json"
    path.write_text(config.to_json())
    port = free_port()
    env = {**os.environ, "SSL_CERT_FILE": str(cert), "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "paude.gateway.app", str(path), "127.0.0.1",
                             str(port)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # waits for "listening", no sleep
    assert READY_LINE in line, line
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain its log
    return proc, port


def connect(port: int, cert: Path | None) -> http.client.HTTPConnection:
    if cert is None:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                          source_address=(CLIENT_SOURCE, 0))
    context = ssl.create_default_context(cafile=str(cert))
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)


def one(conn: http.client.HTTPConnection, *, stream: bool) -> float:
    """Return milliseconds to the whole answer, or to the first body byte when streaming."""
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    start = time.perf_counter()
    conn.request("POST", "/v1/messages", body=STREAM_BODY if stream else BODY, headers=headers)
    response = conn.getresponse()
    if stream:
        first = response.read(1)
        took = time.perf_counter() - start
        assert first, "empty stream"
        response.read()
        return took * 1000
    data = response.read()
    took = time.perf_counter() - start
    assert response.status == 200 and fakenet_server.CANNED.encode() in data, data[:200]
    return took * 1000


def measure(port: int, cert: Path | None, n: int, *, stream: bool) -> float:
    conn = connect(port, cert)
    one(conn, stream=stream)  # warm: TCP, TLS and (through the gateway) its upstream pool
    times = [one(conn, stream=stream) for _ in range(n)]
    conn.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paude-bench-gw-") as tmp:
        cert = make_cert(Path(tmp))
        upstream = start_stand_in(cert)
        gateway, port = start_gateway(Path(tmp), cert, upstream)
        try:
            result: dict[str, object] = {"requests": args.requests, "rounds": args.rounds}
            for shape, stream in (("request", False), ("first_byte", True)):
                direct, through = [], []
                for _ in range(args.rounds):
                    direct.append(measure(upstream, cert, args.requests, stream=stream))
                    through.append(measure(port, None, args.requests, stream=stream))
                d, g = statistics.median(direct), statistics.median(through)
                result[shape] = {"direct_ms": round(d, 3), "gateway_ms": round(g, 3),
                                 "ratio": round(g / d, 2), "added_ms": round(g - d, 3)}
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
