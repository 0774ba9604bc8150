"""The fake internet's web server (runs inside the test image, not on the host).

Serves plain HTTP on 80 and 8080 and HTTPS on 443 and 8443 with a test CA's
certificate. Every answer names the listener, so a test can tell which port
it really reached. ``POST /v1/messages`` is a stand-in for the Anthropic
Messages API: it answers with a canned text, as SSE when ``stream`` is true.
Each request is logged as one JSON line on stdout (``podman logs``).

Stand-ins for the model gateway's upstreams (tests/podman/test_gateway.py):
``POST /token`` is Google's OAuth token endpoint (an access token for any
refresh token), Vertex ``...:rawPredict``/``:streamRawPredict`` answer like
``/v1/messages``. A streamed request whose model contains ``hold`` gets its
first event, then the rest only after ``GET /release`` (so a test can see
the first piece arrive before the stand-in has sent the others).
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CANNED = "PAUDE-STAND-IN-ANSWER"
ACCESS_TOKEN_PREFIX = "ya29.paude-stand-in-"
_RELEASE = threading.Event()
_TOKENS = iter(range(1, 1_000_000))


def _sse_events(model: str) -> list[bytes]:
    text = _sse(model).decode()
    return [f"{event}\n\n".encode() for event in text.split("\n\n") if event]


def _sse(model: str) -> bytes:
    usage = {"input_tokens": 3, "output_tokens": 1}
    message = {
        "id": "msg_paude_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": CANNED},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()


def _message(model: str) -> bytes:
    return json.dumps(
        {
            "id": "msg_paude_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": CANNED}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 5},
        }
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY every
    # keep-alive response waits ~40 ms for a delayed ACK (skews the benchmark).
    disable_nagle_algorithm = True
    listener = "?"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _log(self, body: bytes, **extra: object) -> None:
        record = {
            "listener": self.listener,
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "client": self.client_address[0],
            "headers": dict(self.headers),
            "body": body[:4000].decode("utf-8", "replace"),
            **extra,
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_chunked(self, pieces: list[bytes], hold: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index, piece in enumerate(pieces):
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
            if hold and index == 0:
                _RELEASE.wait(300)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _token(self) -> None:
        token = f"{ACCESS_TOKEN_PREFIX}{next(_TOKENS)}"
        body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/cloud-platform"}
        self._send(200, json.dumps(body).encode(), "application/json")

    def do_GET(self) -> None:
        self._log(b"")
        if self.path == "/release":
            _RELEASE.set()
        host = self.headers.get("Host", "")
        self._send(200, f"fakenet {self.listener} host={host} path={self.path}\n".encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        if not isinstance(request, dict):
            request = {}
        self._log(body, stream=request.get("stream"), model=request.get("model"))
        vertex = "/publishers/anthropic/models/" in self.path
        if self.path.startswith("/token"):
            self._token()
            return
        if not self.path.startswith("/v1/messages") and not vertex:
            self._send(200, b"{}", "application/json")
            return
        model = str(request.get("model") or self.path.rpartition("/")[2].partition(":")[0])
        if "count_tokens" in self.path or "count-tokens" in self.path:
            self._send(200, b'{"input_tokens": 3}', "application/json")
        elif request.get("stream") and "hold" in model:
            _RELEASE.clear()
            self._send_chunked(_sse_events(model), hold=True)
        elif request.get("stream"):
            self._send(200, _sse(model), "text/event-stream")
        else:
            self._send(200, _message(model), "application/json")


def _serve(port: int, context: ssl.SSLContext | None) -> None:
    handler = type(
        f"Handler{port}", (Handler,), {"listener": f"{'https' if context else 'http'}:{port}"}
    )
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main() -> None:
    cert, key = sys.argv[1], sys.argv[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    plans = [(80, None), (8080, None), (443, context), (8443, context)]
    threads = [threading.Thread(target=_serve, args=plan, daemon=True) for plan in plans]
    for thread in threads:
        thread.start()
    sys.stdout.write("fakenet ready\n")
    sys.stdout.flush()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
