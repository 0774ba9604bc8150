"""Allowlist entries: validation and normalisation.

``.example.com`` means the domain and every subdomain; ``example.com`` means
only that host. IP literals are accepted only when written out explicitly.
Everything else (wildcards, URLs, ports, empty entries) is refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")

# The plan's default: Vertex AI and Google APIs.
DEFAULT_DOMAINS: tuple[str, ...] = (".googleapis.com", ".google.com")
ANTHROPIC_API_DOMAIN = "api.anthropic.com"


def validate_domain(entry: str) -> str:
    """Return ``entry`` normalised (lower case), or raise ``ValueError`` saying why."""
    value = entry.strip().lower().rstrip(".") if entry.strip() != "." else "."
    if not value:
        raise ValueError("an allowlist entry is empty")
    if "*" in value:
        raise ValueError(
            f"'{entry}' is a wildcard; write '.example.com' for a domain and its subdomains"
        )
    if "/" in value or ":" in value and not _is_ip(value):
        raise ValueError(f"'{entry}' is not a domain (write the host name only, e.g. example.com)")
    if _is_ip(value):
        return str(ipaddress.ip_address(value))
    bare = value[1:] if value.startswith(".") else value
    if not _HOSTNAME.match(bare) or "." not in bare:
        raise ValueError(f"'{entry}' is not a valid domain name")
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_ip_literal(entry: str) -> bool:
    """Answer whether a validated entry is an IP address."""
    return _is_ip(entry)


def normalize_domains(entries: Iterable[str]) -> tuple[str, ...]:
    """Validate, de-duplicate and drop entries already covered by a wildcard entry.

    Squid refuses a ``dstdomain`` list where ``.example.com`` and ``a.example.com``
    (or ``example.com``) both appear, so the covered ones are removed.
    """
    valid = {validate_domain(e) for e in entries}
    wildcards = {d for d in valid if d.startswith(".")}
    kept = []
    for domain in sorted(valid):
        if is_ip_literal(domain):
            kept.append(domain)
            continue
        bare = domain.lstrip(".")
        covered = any(
            w != domain and (bare == w[1:] or bare.endswith(w)) for w in wildcards
        )
        if not covered:
            kept.append(domain)
    return tuple(kept)


def host_of_url(url: str) -> str | None:
    """Return the host name of ``url`` (e.g. ANTHROPIC_BASE_URL), or ``None``."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname
    return host.lower() if host else None
