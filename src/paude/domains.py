"""Allowlist entries: validation and normalisation.

An entry is one of:

* ``example.com``: only that host;
* ``.example.com``: the domain and every subdomain;
* an IP address (``192.0.2.7``, ``2001:db8::7``): requests that name exactly
  that address (IP-literal requests are otherwise refused);
* a CIDR range (``10.89.0.0/24``): allowed *names* may resolve into it even
  though it is a private range. A range never allows IP-literal requests.

Everything else (``*``, ``.``, a bare top-level domain, URLs, ports, empty
entries, all-numeric names that resolvers would read as IPv4) is refused
with a message that says what to write instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_MAX_NAME = 253

# Empty: model calls go through the session's gateway, not a domain wildcard
# (.googleapis.com would let the agent post to any Cloud Storage bucket).
DEFAULT_DOMAINS: tuple[str, ...] = ()

_EVERYTHING = {"*", ".", "*.*", "all", "any"}


def validate_domain(entry: str) -> str:
    """Return ``entry`` normalised (lower case), or raise ``ValueError`` saying why."""
    value = entry.strip().lower()
    if not value:
        raise ValueError("an allowlist entry is empty")
    if value in _EVERYTHING:
        raise ValueError(f"'{entry}' would allow every destination; use --allow-network for that")
    if "*" in value:
        raise ValueError(
            f"'{entry}' is a wildcard; write '.example.com' for a domain and its subdomains"
        )
    if "%" in value:
        raise ValueError(f"'{entry}' has a zone index; list the plain address")
    if _is_ip(value):
        return str(ipaddress.ip_address(value))
    if "/" in value and _is_network_shape(value):
        return _validate_range(entry, value)
    if "/" in value or ":" in value or "@" in value or "?" in value:
        raise ValueError(
            f"'{entry}' is not a domain; write the host name only, e.g. '{_suggest_host(value)}'"
        )
    return _validate_name(entry, value.rstrip("."))


def _validate_name(entry: str, value: str) -> str:
    bare = value[1:] if value.startswith(".") else value
    if not bare or not _HOSTNAME.match(bare) or len(bare) > _MAX_NAME:
        raise ValueError(f"'{entry}' is not a valid domain name (letters, digits, '-', '.')")
    if "." not in bare:
        what = "a whole top-level domain" if value.startswith(".") else "not a full domain name"
        raise ValueError(f"'{entry}' is {what}; write e.g. 'example.com' or '.example.com'")
    if bare.rsplit(".", 1)[1].isdigit():
        # getaddrinfo reads "1.2.3" or "10.1" as IPv4 shorthand: an IP in disguise.
        raise ValueError(f"'{entry}' looks like an IP address, not a domain name")
    return value


def _is_network_shape(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f:.]+/[0-9]{1,3}", value))


def _validate_range(entry: str, value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"'{entry}' is not a valid CIDR range: {err}") from err
    if net.prefixlen == 0:
        raise ValueError(f"'{entry}' would allow every address; use --allow-network for that")
    return str(net)


def _suggest_host(value: str) -> str:
    host = urlsplit(value if "//" in value else f"//{value}").hostname
    return host or "example.com"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_ip_literal(entry: str) -> bool:
    """Answer whether a validated entry is an IP address."""
    return _is_ip(entry)


def is_ip_range(entry: str) -> bool:
    """Answer whether a validated entry is a CIDR range."""
    return "/" in entry


def is_name(entry: str) -> bool:
    """Answer whether a validated entry is a domain name (exact or with subdomains)."""
    return not is_ip_literal(entry) and not is_ip_range(entry)


def normalize_domains(entries: Iterable[str]) -> tuple[str, ...]:
    """Validate, de-duplicate and drop entries that another entry already covers.

    Squid refuses (or warns about) a ``dstdomain`` list where ``.example.com``
    and ``a.example.com`` (or ``example.com``) both appear, and warns about
    nested ranges, so covered names and ranges are removed. Order is stable
    (sorted) so the rendered config does not change between runs.
    """
    valid = {validate_domain(e) for e in entries}
    wildcards = {d for d in valid if d.startswith(".")}
    ranges = [ipaddress.ip_network(d) for d in valid if is_ip_range(d)]
    kept: list[str] = []
    for entry in sorted(valid):
        if is_ip_literal(entry):
            kept.append(entry)
        elif is_ip_range(entry):
            if not _range_covered(ipaddress.ip_network(entry), ranges):
                kept.append(entry)
        elif not _name_covered(entry, wildcards):
            kept.append(entry)
    return tuple(kept)


def _name_covered(domain: str, wildcards: set[str]) -> bool:
    bare = domain.lstrip(".")
    return any(w != domain and (bare == w[1:] or bare.endswith(w)) for w in wildcards)


def _range_covered(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
    ranges: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> bool:
    return any(
        other != net and other.version == net.version and net.subnet_of(other)  # type: ignore[arg-type]
        for other in ranges
    )


@dataclass(frozen=True)
class Allowlist:
    """A session's allowlist, validated and normalised once (see ``parse``).

    Everything downstream (squid.conf, OpenShift's proxy id and policies)
    takes this and never re-validates or re-hashes the entries.
    """

    entries: tuple[str, ...] = ()
    digest: str = hashlib.sha256(b"").hexdigest()  # over the entries, one per line

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Return the normalised allowlist of ``entries``.

        Raises:
            ValueError: an entry is not valid (the message says what to write).
        """
        kept = normalize_domains(entries)
        return cls(kept, hashlib.sha256("\n".join(kept).encode()).hexdigest())

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def names(self) -> tuple[str, ...]:
        """Return the domain-name entries."""
        return tuple(e for e in self.entries if is_name(e))

    @property
    def ips(self) -> tuple[str, ...]:
        """Return the IP-address entries."""
        return tuple(e for e in self.entries if is_ip_literal(e))

    @property
    def ranges(self) -> tuple[str, ...]:
        """Return the CIDR-range entries."""
        return tuple(e for e in self.entries if is_ip_range(e))


# The agent's (and the gateway's) localhost is its own container or pod: a
# model endpoint on the host's loopback is never reachable from the sandbox.
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def host_of_base_url(variable: str, url: str) -> str:
    """Return the host of a model endpoint URL (e.g. ``ANTHROPIC_BASE_URL``), validated.

    Any port is fine: model calls go to the session's gateway, which reaches
    its upstream directly (not through the allowlist proxy, whose 80/443
    rule does not apply to them); with ``--allow-network`` the agent does.

    Raises:
        ValueError: the URL is not http(s), names no host or points at the
            host's loopback.
    """
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # a bad port (99999, "x") makes a bad URL
    except ValueError as err:
        raise ValueError(f"{variable} is not a valid URL: {err}") from err
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{variable} must be an http:// or https:// URL with a host name, "
                         f"e.g. https://gateway.example.com")
    if host in _LOOPBACK_NAMES or host.endswith(".localhost") or _is_loopback(host):
        raise ValueError(
            f"{variable} points at {host}, the host's loopback, which the sandbox cannot reach "
            f"(inside it, {host} is the sandbox itself)")
    return validate_domain(host)


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
