"""Pure readers of Kubernetes objects: pod readiness, stuck pods, sessions, API errors.

They take plain dicts (``obj.to_dict()`` or ``kubectl get -o json``) and the
server's ``Status`` fields, so they are tested on recorded captures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paude.backends.base import Session, SessionStatus
from paude.backends.openshift.agentpod import is_pod_ready
from paude.backends.openshift.objects import AGENT_CONTAINER, ROLE_PROXY
from paude.backends.openshift.policies import NETPOL_CHECK_CONTAINER, NETPOL_CHECK_EXIT
from paude.errors import (
    ClusterError,
    ImagePullError,
    NetworkPolicyError,
    NotLoggedInError,
    PaudeError,
)
from paude.facts import STOP_CODES
from paude.naming import LABEL_NETWORK, LABEL_SESSION, LABEL_WORKSPACE, NetworkMode

RBAC_HINT = (
    "Ask a cluster admin to grant paude's Role:"
    " paude setup --print-rbac --namespace {ns} --user $(oc whoami) | oc apply -f -"
)
_PULL_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


@dataclass(frozen=True)
class PodState:
    """What a pod's status says: ready, failed (with the error) or still waiting (why)."""

    ready: bool = False
    error: PaudeError | None = None
    waiting: str = ""


def _conditions(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in pod.get("status", {}).get("conditions") or []}


def parse_pod_state(pod: dict[str, Any]) -> PodState:
    """Return whether ``pod`` is ready, cannot start (image, scheduling) or is still starting."""
    status = pod.get("status") or {}
    conditions = _conditions(pod)
    refused = _netpol_refusal(status.get("initContainerStatuses") or [])
    if refused is not None:
        return PodState(error=refused)
    # An init container (the NetworkPolicy check) pulls first: its pull error too.
    for cs in [*(status.get("initContainerStatuses") or []),
               *(status.get("containerStatuses") or [])]:  # fmt: skip
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _PULL_ERRORS:
            return PodState(error=image_error(cs.get("image", "?"), waiting.get("message", ""),
                                              reason=waiting["reason"]))
    if is_pod_ready(pod):
        return PodState(ready=True)
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False":
        return PodState(
            waiting=f"not scheduled: {scheduled.get('message', scheduled.get('reason'))}"
        )
    return PodState(waiting=f"phase {status.get('phase', 'unknown')}")


def _netpol_refusal(statuses: list[dict[str, Any]]) -> NetworkPolicyError | None:
    """The error when the agent pod's NetworkPolicy check failed (now or before a restart)."""
    for cs in statuses:
        if cs.get("name") != NETPOL_CHECK_CONTAINER:
            continue
        for state in (cs.get("state") or {}, cs.get("lastState") or {}):
            done = state.get("terminated") or {}
            if done.get("exitCode") == NETPOL_CHECK_EXIT:
                detail = " ".join(str(done.get("message") or "").split())
                return NetworkPolicyError(
                    "this cluster does not enforce NetworkPolicy, so the agent was not started"
                    + (f": {detail}" if detail else ""),
                    hint="Ask a cluster admin for a network plugin that enforces NetworkPolicy,"
                    " or start an unrestricted session (no allowlist): paude --allow-network.",
                )
    return None



def _agent_status(pod: dict[str, Any]) -> dict[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == AGENT_CONTAINER:
            return dict(cs)
    return {}


def stop_reason(pod: dict[str, Any]) -> str | None:
    """Return why paude's entrypoint stopped the session (``idle 4h``, ``oom``), or None.

    The agent's container exited with one of :data:`STOP_CODES` and its
    termination message; the kubelet restarted it, and the entrypoint now
    waits for a resume. A ready container runs again (resumed), so None.
    A container the kernel killed whole for memory is ``oom`` as well.
    """
    cs = _agent_status(pod)
    if not cs or cs.get("ready"):
        return None
    for state in (cs.get("state") or {}, cs.get("lastState") or {}):
        ended = state.get("terminated") or {}
        if ended.get("exitCode") in STOP_CODES:
            message = str(ended.get("message") or "").strip()
            return message or STOP_CODES[int(ended["exitCode"])]
        if ended.get("reason") == "OOMKilled":
            return "oom"
    return None


def is_agent_running(pod: dict[str, Any]) -> bool:
    """Answer whether the agent's container runs (ready or not)."""
    return "running" in (_agent_status(pod).get("state") or {})


def image_error(image: str, detail: str, *, reason: str = "") -> ImagePullError:
    """Return the error for an image the cluster's node cannot pull.

    ``reason`` is the container's waiting reason (``ErrImagePull``,
    ``ImagePullBackOff``), ``detail`` the kubelet's message.
    """
    host = image.split("/", 1)[0] if "/" in image else "the registry"
    message = " ".join(detail.split())  # the kubelet's message, on one line
    code = f" ({reason})" if reason else ""
    return ImagePullError(
        f"the node cannot pull the image {image}{code}: {message}".rstrip(": "),
        hint=(
            f"Check that the cluster's nodes reach {host} and, if it needs a login, that"
            " backend.pull_secret names an image pull Secret for it"
            " (kubectl create secret docker-registry NAME --docker-server=...)."
        ),
    )


def classify_status(
    code: int, message: str, *, verb: str, resource: str, namespace: str
) -> PaudeError:
    """Turn an API error (HTTP code and Status message) into a paude error with a hint."""
    if code == 401:
        return NotLoggedInError(
            f"the cluster refused our credentials: {message}",
            hint="Log in again: oc login <server> (or refresh your kubeconfig).",
        )
    if "exceeded quota" in message or "forbidden: exceeded" in message:
        return ClusterError(
            f"the namespace {namespace} is out of quota: {message}",
            hint="Stop unused sessions (paude sessions; paude stop NAME) or ask for more quota.",
        )
    if code == 403:
        return ClusterError(
            f"forbidden: cannot {verb} {resource} in namespace {namespace} ({message})",
            hint=RBAC_HINT.format(ns=namespace),
        )
    if code == 404 and f'namespaces "{namespace}" not found' in message:
        return ClusterError(
            f"the namespace {namespace} does not exist",
            hint=f"Create it (oc new-project {namespace}) or set backend.namespace in paude.json.",
        )
    return ClusterError(f"cannot {verb} {resource} in namespace {namespace}: {message}")


def pending_error(pod_name: str, reason: str, events: list[str]) -> PaudeError:
    """Return the error for a session pod that did not become ready in time."""
    detail = "; ".join(events[-3:]) if events else reason
    for text in events:
        if "exceeded quota" in text:
            return ClusterError(
                f"the session pod cannot be created: {text}",
                hint="Stop unused sessions or ask for more quota.",
            )
        if "violates PodSecurity" in text:
            return ClusterError(f"the session pod was refused by admission: {text}")
    return ClusterError(
        f"the session pod {pod_name} is not ready: {detail}",
        hint="Check the cluster's capacity and events: oc get events --sort-by=.lastTimestamp",
    )


def build_session(sts: dict[str, Any], pod: dict[str, Any] | None, proxy_ready: bool) -> Session:
    """Return the ``Session`` described by a session's StatefulSet and its pod."""
    meta = sts["metadata"]
    labels = meta.get("labels", {})
    network = NetworkMode.from_label(labels.get(LABEL_NETWORK))
    status, detail = SessionStatus.PENDING, ""
    if (sts.get("spec") or {}).get("replicas") == 0:
        status = SessionStatus.STOPPED
    elif pod is not None and (reason := stop_reason(pod)) is not None:
        status, detail = SessionStatus.STOPPED, reason
    elif pod is not None:
        state = parse_pod_state(pod)
        if state.error is not None:
            status, detail = SessionStatus.ERROR, state.error.message
        elif state.ready:
            status = SessionStatus.RUNNING
            if network is NetworkMode.RESTRICTED and not proxy_ready:
                status, detail = SessionStatus.DEGRADED, f"{ROLE_PROXY} not ready"
        else:
            detail = state.waiting
    return Session(
        name=labels.get(LABEL_SESSION, meta["name"]),
        backend="openshift",
        status=status,
        workspace=(meta.get("annotations") or {}).get(LABEL_WORKSPACE, ""),
        created_at=str(meta.get("creationTimestamp", "")),
        network=network,
        detail=detail,
    )


def build_stopped_session(claim: dict[str, Any]) -> Session:
    """Return the ``Session`` of a kept workspace PVC whose StatefulSet is gone."""
    meta = claim["metadata"]
    labels = meta.get("labels", {})
    return Session(
        name=labels.get(LABEL_SESSION, meta["name"]),
        backend="openshift",
        status=SessionStatus.STOPPED,
        workspace=(meta.get("annotations") or {}).get(LABEL_WORKSPACE, ""),
        created_at=str(meta.get("creationTimestamp", "")),
        network=NetworkMode.from_label(labels.get(LABEL_NETWORK)),
        detail=f"workspace volume {meta['name']} kept",
    )
