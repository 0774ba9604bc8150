"""The gateway's HTTP server: aiohttp in, aiohttp out, responses streamed unbuffered.

``python -m paude.gateway.app CONFIG LISTEN_HOST [PORT]`` runs it (the gateway
image's entrypoint). It logs one line per request (method, path, status),
never a header value.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

from paude.gateway.policy import (
    GATEWAY_PORT,
    READY_LINE,
    GatewayConfig,
    build_response_headers,
    build_upstream_headers,
    is_client_allowed,
    parse_config,
    route,
)
from paude.gateway.tokens import CredentialError, CredentialSource, build_credential_source

# Model answers can take minutes; a stalled upstream still ends.
UPSTREAM_TIMEOUT = ClientTimeout(total=None, sock_connect=30, sock_read=600)
MAX_BODY = 32 * 1024 * 1024  # a long conversation with images fits


def _deny(status: int, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": "paude_gateway", "message": message}}
    return web.json_response(body, status=status)


class Gateway:
    """Forward allowed model calls to the fixed upstream with the credential added."""

    def __init__(self, config: GatewayConfig, credentials: CredentialSource) -> None:
        self.config = config
        self.credentials = credentials
        self.client: ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        # auto_decompress=False: bytes pass through as the upstream sent them.
        self.client = ClientSession(connector=TCPConnector(limit=64), timeout=UPSTREAM_TIMEOUT,
                                    auto_decompress=False)

    async def stop(self, _app: web.Application) -> None:
        if self.client is not None:
            await self.client.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Check the caller and the destination, then stream the upstream's answer back."""
        started = time.monotonic()
        response = await self._forward(request)
        took = (time.monotonic() - started) * 1000
        print(f"{request.method} {request.path} {response.status} {took:.0f}ms", flush=True)
        return response

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if not is_client_allowed(request.remote, self.config.clients):
            return _deny(403, "this gateway serves only its session's agent")
        url = route(self.config, request.method, request.path, request.query_string)
        if url is None:
            return _deny(404, f"the gateway does not forward {request.method} {request.path}")
        try:
            credential = await self.credentials.current()
        except CredentialError as err:
            print(f"credential: {err}", flush=True)
            return _deny(502, "the gateway's credential was refused upstream; on the host run: "
                         "gcloud auth application-default login, then restart the session")
        headers = build_upstream_headers(request.headers.items(), self.config.mode, credential)
        body = await request.read()
        try:
            return await self._relay(request, url, headers, body)
        except (ClientError, TimeoutError) as err:
            print(f"upstream {url.split('/')[2]} failed: {type(err).__name__}", flush=True)
            return _deny(502, f"the gateway could not reach its upstream: {type(err).__name__}")

    async def _relay(self, request: web.Request, url: str, headers: dict[str, str],
                     body: bytes) -> web.StreamResponse:
        assert self.client is not None
        async with self.client.request(request.method, url, headers=headers, data=body,
                                       allow_redirects=False) as upstream:
            out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in build_response_headers(upstream.headers.items()):
                out.headers.add(key, value)
            await out.prepare(request)
            # Each chunk goes out as soon as it arrives: server-sent events
            # reach the agent event by event.
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out


def build_app(config: GatewayConfig, credentials: CredentialSource) -> web.Application:
    """Return the aiohttp application serving ``config``."""
    gateway = Gateway(config, credentials)
    app = web.Application(client_max_size=MAX_BODY)
    app.on_startup.append(gateway.start)
    app.on_cleanup.append(gateway.stop)
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    return app


async def serve(config: GatewayConfig, host: str, port: int) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(build_app(config, build_credential_source(config)),
                           access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"{READY_LINE} on {host}:{port} ({config.mode.value})", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    """Run the gateway: ``CONFIG LISTEN_HOST [PORT]``."""
    if len(argv) not in (2, 3):
        print("usage: python -m paude.gateway.app CONFIG LISTEN_HOST [PORT]", file=sys.stderr)
        return 2
    try:
        config = parse_config(Path(argv[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        print(f"paude gateway: unusable config {argv[0]}: {err}", file=sys.stderr)
        return 2
    port = int(argv[2]) if len(argv) == 3 else GATEWAY_PORT
    asyncio.run(serve(config, argv[1], port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
