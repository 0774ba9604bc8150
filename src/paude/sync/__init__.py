"""Workspace sync between the local tree and a session's pod (see docs/sync.md).

``SyncEngine`` is the interface; ``BuiltinSync`` the default engine; a
``SyncSpec`` pairs a local workspace with an exec transport into the pod.
"""

from __future__ import annotations

from paude.sync.api import BuiltinSync, SyncEngine
from paude.sync.daemon import SyncSpec
from paude.sync.engine import RoundResult
from paude.sync.transport import ExecTransport, build_kube_prefix, build_podman_prefix

__all__ = ["BuiltinSync", "ExecTransport", "RoundResult", "SyncEngine", "SyncSpec",
           "build_kube_prefix", "build_podman_prefix"]
