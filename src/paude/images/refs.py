"""Where an image is pushed and how nodes pull it (pure).

A pushed image keeps its content-hash tag (``paude-agent:<12 hex>``, a hash of
every build input), so the registry answers "is this exact build there?" with
one manifest request. Pods never use that tag: they get the manifest's digest,
``<pull prefix>/paude-agent@sha256:...``, so what runs is what was pushed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from paude.errors import ConfigError

# host[:port][/path...]: what `backend.registry` and a pull address look like.
_PREFIX_RE = re.compile(
    r"(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?)"
    r"(/[a-z0-9]+([._-][a-z0-9]+)*)*"
)
_LOCAL_TAG_RE = re.compile(r"localhost/(?P<name>paude-[a-z-]+):(?P<tag>[0-9a-f]{12})")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials paude writes into a temporary auth file (never into argv)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RegistryTarget:
    """Where paude pushes (``push_prefix``) and what the nodes pull (``pull_prefix``).

    ``login`` is None when the user's own ``podman login`` is used; OpenShift
    sets it from the kubeconfig's bearer token. ``login_hint`` is the command
    that fixes a refused login; ``push_permission`` names the RBAC a refused
    push lacks, when the registry is authorized by the cluster.
    """

    push_prefix: str
    pull_prefix: str
    tls_verify: bool = True
    cert_dir: str | None = None  # the registry's CA (ca.crt), as ``podman --cert-dir``
    login: RegistryLogin | None = None
    login_hint: str = ""
    push_permission: str = ""

    def __post_init__(self) -> None:
        """Refuse prefixes that are not ``host[:port][/path]``."""
        for prefix in (self.push_prefix, self.pull_prefix):
            validate_prefix(prefix)

    @property
    def host(self) -> str:
        """The registry host (and port) paude talks to."""
        return registry_host(self.push_prefix)


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is ``host[:port][/path]``; raise ``ConfigError`` otherwise."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError(
            f"invalid registry address {prefix!r}",
            hint="Use host[:port][/path], e.g. registry.example.com/team (no scheme, no tag).",
        )
    return prefix


def registry_host(prefix: str) -> str:
    """Return the ``host[:port]`` part of a registry prefix."""
    return prefix.split("/", 1)[0]


def _parse_local(local_tag: str) -> tuple[str, str]:
    match = _LOCAL_TAG_RE.fullmatch(local_tag)
    if match is None:
        raise ValueError(f"not a paude image tag: {local_tag!r}")
    return match["name"], match["tag"]


def build_push_ref(target: RegistryTarget, local_tag: str) -> str:
    """Return where ``localhost/paude-<kind>:<hash>`` is pushed: same name and tag."""
    name, tag = _parse_local(local_tag)
    return f"{target.push_prefix}/{name}:{tag}"


def build_pull_ref(target: RegistryTarget, local_tag: str, digest: str) -> str:
    """Return the reference a pod runs: the pull prefix, the name and the digest."""
    if not _DIGEST_RE.fullmatch(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    name, _ = _parse_local(local_tag)
    return f"{target.pull_prefix}/{name}@{digest}"


def manifest_digest(raw_manifest: bytes) -> str:
    """Return the digest of a manifest: sha256 of its exact bytes (the OCI rule)."""
    return "sha256:" + hashlib.sha256(raw_manifest).hexdigest()
