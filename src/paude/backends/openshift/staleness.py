"""Warn when the cluster's credential copies are missing or older than the local files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paude.backends.base import Credentials
from paude.backends.openshift.credentials import (
    SOURCE_MTIME,
    credential_paths,
    credential_target,
    credential_warnings,
)

if TYPE_CHECKING:
    from paude.backends.openshift.client import KubeClient


def stale_credentials(client: KubeClient, creds: Credentials) -> list[str]:
    """Return warnings for credentials the session would mount stale or not at all."""
    paths = credential_paths(creds)
    local = {kind: int(path.stat().st_mtime) for kind, path in paths.items()}
    remote: dict[str, int | None] = {}
    for kind in local:
        obj_kind, name = credential_target(kind)
        obj = client.get("v1", obj_kind, name)
        annotations = (obj or {}).get("metadata", {}).get("annotations") or {}
        stamp = annotations.get(SOURCE_MTIME)
        remote[kind] = int(stamp) if stamp and stamp.isdigit() else None
    return credential_warnings(local, remote)
