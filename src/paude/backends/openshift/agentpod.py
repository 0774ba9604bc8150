"""A session's agent pod: its names and labels, its namespace, when it is ready.

The standard library only: the quick reattach (``cli/quick_openshift.py``)
uses this module without loading pydantic or lightkube, and the full
backend imports the same facts (through ``objects.py``), so the two cannot
disagree on which pod a session is or when it runs.
"""

from __future__ import annotations

from paude.naming import LABEL_MANAGED_BY, LABEL_ROLE, LABEL_SESSION, MANAGED_BY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

AGENT_CONTAINER = "agent"
ROLE_AGENT = "agent"
DEFAULT_NAMESPACE = "default"


def agent_name(session: str) -> str:
    """Return the StatefulSet name of ``session`` (its pod is ``<name>-0``)."""
    return f"paude-{session}"


def agent_pod_name(session: str) -> str:
    """Return the name of the single pod of ``session``'s StatefulSet."""
    return f"{agent_name(session)}-0"


def pick_namespace(namespace: str | None, context_namespace: str | None) -> str:
    """Return the namespace to use: the configured one, else the context's, else ``default``."""
    return namespace or context_namespace or DEFAULT_NAMESPACE


def is_pod_ready(pod: dict[str, Any]) -> bool:
    """Answer whether ``pod`` runs and is Ready (the agent pod: its tmux session is there)."""
    status = pod.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return status.get("phase") == "Running" and bool(ready) and ready[0].get("status") == "True"


def is_session_agent(pod: dict[str, Any], session: str) -> bool:
    """Answer whether ``pod`` is paude's agent pod of ``session`` (its labels), not deleted."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    return (labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_ROLE) == ROLE_AGENT
            and labels.get(LABEL_SESSION) == session and not meta.get("deletionTimestamp"))
