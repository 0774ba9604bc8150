"""What a session's proxy refused: squid's access.log in paude's format (both backends).

Pure: text in, data out. The podman backend reads the log with ``podman
exec``; the OpenShift backend through the API, as the log of the proxy
pod's ``access-log`` container.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class DeniedRequest:
    """One request squid refused (a line of its access.log)."""

    time: float  # unix seconds
    client: str
    method: str
    url: str
    host: str
    port: int | None
    status: str  # squid's code/HTTP status, e.g. TCP_DENIED/403


@dataclass(frozen=True)
class BlockedDomain:
    """A destination the proxy refused, aggregated over its requests."""

    domain: str
    count: int
    last_seen: float
    ports: tuple[int, ...]

    @property
    def hint(self) -> str:
        """Return the command that would allow it."""
        return f"paude --allow-domain {self.domain}"

    def to_dict(self) -> dict[str, object]:
        """Return the stable JSON shape of ``paude blocked --json``."""
        return {
            "domain": self.domain,
            "count": self.count,
            "last_seen": self.last_seen,
            "ports": list(self.ports),
            "hint": self.hint,
        }


def _host_port(method: str, url: str) -> tuple[str, int | None]:
    if method == "CONNECT":
        host, _, port = url.rpartition(":")
        host = host.strip("[]")
        return host.lower(), int(port) if port.isdigit() else None
    parts = urlsplit(url)
    try:
        explicit = parts.port
    except ValueError:
        explicit = None
    return (parts.hostname or "").lower(), explicit or (443 if parts.scheme == "https" else 80)


def parse_access_log(text: str) -> list[DeniedRequest]:
    """Return the denied requests of an access.log in paude's format, newest first.

    Lines in other formats, or with no host, are skipped: the log is
    diagnostic and must never make ``paude blocked`` fail.
    """
    denied: list[DeniedRequest] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or "DENIED" not in fields[2]:
            continue
        try:
            when = float(fields[0])
        except ValueError:
            continue
        host, port = _host_port(fields[3], fields[4])
        if host:
            denied.append(
                DeniedRequest(when, fields[1], fields[3], fields[4], host, port, fields[2])
            )
    denied.sort(key=lambda r: r.time, reverse=True)
    return denied


def build_blocked_domains(requests: Iterable[DeniedRequest]) -> list[BlockedDomain]:
    """Group denied requests by host; the most recently denied host first."""
    seen: dict[str, list[DeniedRequest]] = {}
    for request in requests:
        seen.setdefault(request.host, []).append(request)
    blocked = [
        BlockedDomain(
            domain=host,
            count=len(items),
            last_seen=max(r.time for r in items),
            ports=tuple(sorted({r.port for r in items if r.port is not None})),
        )
        for host, items in seen.items()
    ]
    blocked.sort(key=lambda b: (-b.last_seen, b.domain))
    return blocked
