"""Pure builders for the credential Secrets and ConfigMap ``paude setup`` creates.

They are per namespace (per user), not per session: sessions mount them
read-only with ``optional: true``, so rotating them is one ``paude setup``.
Their values never reach ``paude manifests``: exports hold references only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from paude.backends.openshift.objects import (
    CLAUDE_KEY,
    CLAUDE_SECRET,
    GCLOUD_KEY,
    GCLOUD_SECRET,
    GITCONFIG_CONFIGMAP,
    GITCONFIG_KEY,
    ROLE_CREDENTIALS,
    ClusterSettings,
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
