"""Turn skopeo/podman registry failures into one line with the fix (pure).

containers/image words its errors the same way in skopeo and podman; the
texts matched here are the ones both print (seen in tests/podman/test_push.py).
"""

from __future__ import annotations

import re

from paude.errors import RegistryError
from paude.images.refs import RegistryTarget

# The manifest check's "not there yet": a normal answer, not a failure.
_MISSING = ("manifest unknown", "name unknown", "repository name not known")
_UNREACHABLE = (
    "connection refused", "no such host", "i/o timeout", "network is unreachable",
    "no route to host", "connection reset", "TLS handshake timeout",
)  # fmt: skip
_PLAIN_HTTP = "server gave HTTP response to HTTPS client"
_TLS = ("x509:", "certificate signed by unknown authority", "tls: ")
_LOGIN = ("unauthorized", "authentication required", "incorrect username or password")
_DENIED = ("denied", "forbidden")
_PARSING_RE = re.compile(r'^Error parsing image name "[^"]*": ')
_QUOTA = ("quota", "exceeds the limit", "storage limit")
# The registry itself failed (docker-registry answers a full disk so, without a reason).
_SERVER_RE = re.compile(r"unexpected HTTP status: 5[0-9][0-9]")


def is_missing(stderr: str) -> bool:
    """Return whether a failed manifest check only means "not pushed yet"."""
    return any(text in stderr for text in _MISSING)


def _reason(stderr: str) -> str:
    """The last line of containers/image's message, without logrus' decoration."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no error output"
    if 'msg="' in last:
        last = last.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    # skopeo 1.9 prefixes every inspect failure with this misleading phrase.
    return _PARSING_RE.sub("", last.removeprefix("Error: "))


def classify_failure(stderr: str, *, target: RegistryTarget, action: str) -> RegistryError:
    """Return the error for a failed ``action`` ("check", "push") against ``target``."""
    host, low = target.host, stderr.lower()
    reason = _reason(stderr)
    if _PLAIN_HTTP in stderr:
        return RegistryError(
            f"the registry {host} speaks plain HTTP, not HTTPS",
            hint='Set "registry_tls_verify": false in the backend section (test registries only).',
        )
    if any(text.lower() in low for text in _UNREACHABLE):
        return RegistryError(
            f"cannot reach the registry {host}: {reason}",
            hint="Check backend.registry in paude.json, the network or VPN, and that it runs.",
        )
    if any(text in low for text in _TLS):
        return RegistryError(
            f"the registry {host} has a certificate this machine does not trust: {reason}",
            hint="Set backend.registry_cert_dir to a directory holding its CA as ca.crt"
            " (or put it in /etc/containers/certs.d/HOST/ca.crt).",
        )
    if any(text in low for text in _QUOTA):
        return RegistryError(
            f"the registry {host} refused the image: over quota ({reason})",
            hint="Remove old paude images from it (or ask for more quota), then retry.",
        )
    if _SERVER_RE.search(stderr):
        return RegistryError(
            f"the registry {host} failed to store the image: {reason}",
            hint="It answered with a server error: check its log and its free storage"
            " (a full disk answers so), then retry.",
        )
    if any(text in low for text in _LOGIN):
        return RegistryError(
            f"the registry {host} refused the login: {reason}",
            hint=target.login_hint or f"Log in: podman login {host}",
        )
    if any(text in low for text in _DENIED):
        return RegistryError(
            f"no permission to push to {target.push_prefix} on {host}: {reason}",
            hint=target.push_permission or f"Ask the owner of {host} for push access.",
        )
    return RegistryError(f"cannot {action} the image on {host}: {reason}")
