"""Session names: derived from the workspace, or given and validated."""

from __future__ import annotations

import hashlib
import os
import re
from enum import StrEnum

from paude.errors import ConfigError

TYPE_CHECKING = False  # pathlib and typing cost ~30 ms: the quick exec/attach path skips them
if TYPE_CHECKING:
    from os import PathLike

MAX_NAME = 40
_VALID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_SESSION = "paude.io/session"
LABEL_ROLE = "paude.io/role"
LABEL_WORKSPACE = "paude.io/workspace"
LABEL_BACKEND = "paude.io/backend"
LABEL_NETWORK = "paude.io/network"
# The session's configured timeouts (podman: the reason of a stop names them).
LABEL_TIMEOUT_IDLE = "paude.io/timeout-idle"
LABEL_TIMEOUT_MAX = "paude.io/timeout-max"
MANAGED_BY = "paude"


class NetworkMode(StrEnum):
    """A session's network: through the allowlist proxy, or open (``--allow-network``)."""

    RESTRICTED = "restricted"
    UNRESTRICTED = "unrestricted"

    @classmethod
    def of(cls, allow_network: bool) -> NetworkMode:
        """Return the mode of a session started with or without ``--allow-network``."""
        return cls.UNRESTRICTED if allow_network else cls.RESTRICTED

    @classmethod
    def from_label(cls, value: str | None) -> NetworkMode:
        """Return the mode a ``paude.io/network`` label says (none: restricted, the default)."""
        return cls.UNRESTRICTED if value == cls.UNRESTRICTED.value else cls.RESTRICTED


def validate_session_name(name: str) -> str:
    """Return ``name`` if it is a valid session name, else raise ``ConfigError``."""
    if not _VALID.match(name):
        raise ConfigError(
            f"invalid session name {name!r}",
            hint=(
                "Use 1-40 lower-case letters, digits and '-', starting and ending with a"
                " letter or digit."
            ),
        )
    return name


def derive_session_name(workspace: str | PathLike[str]) -> str:
    """Return the default name for ``workspace``: its directory name plus a path hash.

    The hash keeps two checkouts named the same apart; it is taken over the
    absolute, resolved path so the same directory always maps to one name.
    """
    resolved = os.path.realpath(workspace)  # what Path.resolve() returns
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:6]
    stem = re.sub(r"[^a-z0-9]+", "-", os.path.basename(resolved).lower()).strip("-")
    stem = stem[: MAX_NAME - 7].rstrip("-") or "workspace"
    return f"{stem}-{digest}"
