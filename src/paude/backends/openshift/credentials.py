"""Pure builders for the credential Secrets and ConfigMap ``paude setup`` creates.

They are per namespace (per user), not per session: sessions mount them
read-only with ``optional: true``, so rotating them is one ``paude setup``.
Their values never reach ``paude manifests``: exports hold references only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paude.backends.base import Credentials, SessionSpec
from paude.backends.openshift.objects import (
    CLAUDE_KEY,
    CLAUDE_SECRET,
    GCLOUD_KEY,
    GCLOUD_SECRET,
    GITCONFIG_CONFIGMAP,
    GITCONFIG_KEY,
    ROLE_CREDENTIALS,
    ClusterSettings,
    env_secret_name,
    labels,
    metadata,
)

# When the local source file was last changed (seconds since the epoch, as
# text): a session start compares it with the local file to warn when stale.
SOURCE_MTIME = "paude.io/source-mtime"


@dataclass(frozen=True)
class CredentialSource:
    """One local credential file, read by the caller."""

    kind: str  # "gcloud", "gitconfig" or "claude"
    content: bytes
    mtime: int


_TARGETS: dict[str, tuple[str, str, str]] = {
    "gcloud": ("Secret", GCLOUD_SECRET, GCLOUD_KEY),
    "gitconfig": ("ConfigMap", GITCONFIG_CONFIGMAP, GITCONFIG_KEY),
    "claude": ("Secret", CLAUDE_SECRET, CLAUDE_KEY),
}


def credential_target(kind: str) -> tuple[str, str]:
    """Return the ``(kind, name)`` of the object that holds credential ``kind``."""
    obj_kind, name, _ = _TARGETS[kind]
    return obj_kind, name


def build_credential_object(source: CredentialSource, settings: ClusterSettings) -> dict[str, Any]:
    """Return the Secret or ConfigMap holding ``source`` (values included: never export it)."""
    obj_kind, name, key = _TARGETS[source.kind]
    meta = metadata(name, settings, labels(ROLE_CREDENTIALS), **{SOURCE_MTIME: str(source.mtime)})
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": obj_kind, "metadata": meta}
    if obj_kind == "Secret":
        obj["type"] = "Opaque"
        obj["data"] = {key: base64.b64encode(source.content).decode()}
    else:
        obj["data"] = {key: source.content.decode()}
    return obj


def build_env_secret(
    spec: SessionSpec, keys: list[str], settings: ClusterSettings
) -> dict[str, Any]:
    """Return the session's Secret holding the values of the secret env ``keys``.

    A ``SecretManifest`` step of the start plan: its values are never
    printed or exported; the StatefulSet only references its keys.
    """
    data = {k: base64.b64encode(spec.env[k].encode()).decode() for k in keys}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(
            env_secret_name(spec.name), settings, labels(ROLE_CREDENTIALS, session=spec.name)
        ),
        "data": data,
    }


def credential_paths(creds: Credentials) -> dict[str, Path]:
    """Return the local file behind each credential kind that exists on this machine."""
    candidates = {
        "gcloud": creds.gcloud_dir / GCLOUD_KEY if creds.gcloud_dir else None,
        "gitconfig": creds.gitconfig,
        "claude": creds.claude_dir / CLAUDE_KEY if creds.claude_dir else None,
    }
    return {kind: path for kind, path in candidates.items() if path and path.is_file()}


def credential_warnings(local: dict[str, int], remote: dict[str, int | None]) -> list[str]:
    """Return a warning per credential missing from the cluster or older than its local file."""
    warnings = []
    for kind, mtime in sorted(local.items()):
        obj_kind, name = credential_target(kind)
        stored = remote.get(kind)
        if stored is None:
            warnings.append(
                f"{obj_kind} {name} ({kind}) is not in the cluster; the agent runs without it"
                " (create it with: paude setup --backend openshift)"
            )
        elif stored < mtime:
            warnings.append(
                f"{obj_kind} {name} ({kind}) is older than the local file"
                " (refresh it with: paude setup --backend openshift)"
            )
    return warnings
