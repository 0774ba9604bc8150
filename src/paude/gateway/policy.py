"""What the gateway forwards, where, and with which headers (pure, no I/O).

The host side of paude builds a :class:`GatewayConfig` and hands it to the
gateway as a podman secret / Kubernetes Secret (JSON); the gateway parses it
with :func:`parse_config`. Everything a request may become upstream is
decided here, so the unit tests cover the security rules without a network.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GATEWAY_HOST = "paude-gateway"  # the name the agent resolves (its hosts file)
GATEWAY_PORT = 8080
CONFIG_PATH = "/run/secrets/paude-gateway"  # where the gateway reads its secret
ANTHROPIC_UPSTREAM = "https://api.anthropic.com"
VERTEX_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Claude Code's own placeholder: it needs some token to send, the gateway drops it.
PLACEHOLDER_TOKEN = "paude-gateway"  # not a secret, by design
READY_LINE = "paude gateway listening"  # logged once it accepts connections
# Every address: where the network, not the gateway, decides who may call it
# (Kubernetes: the gateway pod's NetworkPolicy admits its session's agent only).
ANY_CLIENT = ("0.0.0.0/0", "::/0")
OAUTH_BETA = "oauth-2025-04-20"  # the API accepts OAuth tokens only with this beta

# Request headers the gateway passes on; everything else (Authorization,
# x-api-key, cookies, proxy headers) is dropped. Claude Code's LLM gateway
# documentation names anthropic-beta and anthropic-version.
_FORWARD_HEADERS = ("accept", "content-type", "user-agent", "anthropic-version",
                    "anthropic-beta", "x-app")
_FORWARD_PREFIXES = ("x-stainless-", "anthropic-")
_DROP_REQUEST = ("authorization", "x-api-key", "anthropic-dangerous-direct-browser-access")
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones aiohttp sets itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "content-length",
                        "host"})

_REGION_RE = re.compile(r"[a-z]+(?:-[a-z0-9]+)*")
_PROJECT_RE = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[a-z0-9.:-]{1,100}")
_MODEL_RE = re.compile(r"[A-Za-z0-9._@-]+")
_VERTEX_METHODS = ("rawPredict", "streamRawPredict")
_ANTHROPIC_PATHS = ("/v1/messages", "/v1/messages/count_tokens")


class AuthMode(StrEnum):
    """How the gateway authenticates upstream."""

    VERTEX = "vertex"  # Google ADC -> short-lived access tokens
    API_KEY = "api-key"  # ANTHROPIC_API_KEY -> x-api-key
    OAUTH = "oauth"  # CLAUDE_CODE_OAUTH_TOKEN (claude setup-token) -> Bearer


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs; it travels as a secret (it holds the credential)."""

    mode: AuthMode
    clients: tuple[str, ...]  # CIDRs that may call it (the session's internal network)
    secret: str = ""  # the API key or OAuth token
    adc: Mapping[str, Any] = field(default_factory=dict)  # the ADC JSON (Vertex)
    project: str = ""  # the Vertex project the token may be used for
    anthropic_upstream: str = ANTHROPIC_UPSTREAM

    def to_json(self) -> str:
        """Return the secret's content."""
        return json.dumps({"mode": self.mode.value, "clients": list(self.clients),
                           "secret": self.secret, "adc": dict(self.adc),
                           "project": self.project,
                           "anthropic_upstream": self.anthropic_upstream})


def build_gateway_args(listen_host: str) -> list[str]:
    """Return the gateway image's arguments (after its entrypoint), on every backend."""
    return [CONFIG_PATH, listen_host, str(GATEWAY_PORT)]


def parse_config(text: str) -> GatewayConfig:
    """Return the config in a secret's ``text``; raise ``ValueError`` when it is unusable."""
    data = json.loads(text)
    config = GatewayConfig(
        mode=AuthMode(data["mode"]), clients=tuple(data.get("clients") or ()),
        secret=str(data.get("secret", "")), adc=dict(data.get("adc") or {}),
        project=str(data.get("project", "")),
        anthropic_upstream=str(data.get("anthropic_upstream") or ANTHROPIC_UPSTREAM))
    if config.mode is AuthMode.VERTEX and not (config.adc and config.project):
        raise ValueError("vertex mode needs the ADC and a project")
    if config.mode is not AuthMode.VERTEX and not config.secret:
        raise ValueError(f"{config.mode.value} mode needs its secret")
    if not config.anthropic_upstream.startswith("https://"):
        raise ValueError("the Anthropic upstream must be https")
    return config


def is_client_allowed(remote: str | None, clients: Iterable[str]) -> bool:
    """Answer whether ``remote`` may use the gateway: inside a client network and
    not its first address (the bridge, through which the host and other
    containers' routed traffic would arrive)."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    for cidr in clients:
        network = ipaddress.ip_network(cidr, strict=False)
        bridge = next(network.hosts(), None)
        if address in network and address != bridge:
            return True
    return False


def vertex_host(region: str) -> str:
    """Return the Vertex AI endpoint of ``region`` (``global`` has no prefix)."""
    if region == "global":
        return "aiplatform.googleapis.com"
    return f"{region}-aiplatform.googleapis.com"


def route(config: GatewayConfig, method: str, path: str, query: str = "") -> str | None:
    """Return the upstream URL for a request, or ``None`` when it is not forwarded.

    Only model calls pass: Anthropic ``/v1/messages`` (and its token count),
    or Vertex ``rawPredict``/``streamRawPredict`` of an Anthropic model in the
    configured project. So the credential cannot be used for anything else
    (no Cloud Storage, no other project), whatever the agent asks for.
    """
    if method != "POST":
        return None
    suffix = f"?{query}" if query else ""
    if config.mode is not AuthMode.VERTEX:
        return f"{config.anthropic_upstream}{path}{suffix}" if path in _ANTHROPIC_PATHS else None
    parts = path.split("/")
    # /v1/projects/P/locations/R/publishers/anthropic/models/M:METHOD
    if len(parts) != 10 or parts[:3] != ["", "v1", "projects"] or parts[4] != "locations" \
            or parts[6:8] != ["publishers", "anthropic"] or parts[8] != "models":
        return None
    project, region = parts[3], parts[5]
    model, _, verb = parts[9].partition(":")
    if project != config.project or not _REGION_RE.fullmatch(region) \
            or not _MODEL_RE.fullmatch(model) or verb not in _VERTEX_METHODS:
        return None
    return f"https://{vertex_host(region)}{path}{suffix}"


def build_upstream_headers(incoming: Iterable[tuple[str, str]], mode: AuthMode,
                           credential: str) -> dict[str, str]:
    """Return the headers sent upstream: the allowed ones from the agent plus the credential."""
    out: dict[str, str] = {}
    for key, value in incoming:
        name = key.lower()
        if name in _DROP_REQUEST or name in HOP_BY_HOP:
            continue
        if name in _FORWARD_HEADERS or name.startswith(_FORWARD_PREFIXES):
            out[name] = f"{out[name]},{value}" if name in out else value
    if mode is AuthMode.API_KEY:
        out["x-api-key"] = credential
    else:
        out["authorization"] = f"Bearer {credential}"
    if mode is AuthMode.OAUTH:
        betas = [b for b in out.get("anthropic-beta", "").split(",") if b.strip()]
        if OAUTH_BETA not in betas:
            out["anthropic-beta"] = ",".join([*betas, OAUTH_BETA])
    return out


def build_response_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the upstream response headers passed back to the agent."""
    return [(k, v) for k, v in upstream if k.lower() not in HOP_BY_HOP]
