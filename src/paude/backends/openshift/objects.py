"""Names, labels and settings shared by the OpenShift manifest builders (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from paude.backends.openshift.agentpod import (
    AGENT_CONTAINER,
    ROLE_AGENT,
    agent_name,
    agent_pod_name,
)
from paude.config.models import PROXY_RESOURCES, BackendConfig, Resources, Timeouts
from paude.domains import Allowlist
from paude.facts import AGENT_UID, PROXY_PORT
from paude.naming import LABEL_MANAGED_BY, LABEL_ROLE, LABEL_SESSION, MANAGED_BY

# Which proxy (one per distinct allowlist) an agent uses; also on the proxy's pods.
LABEL_PROXY = "paude.io/proxy"
ROLE_PROXY = "proxy"
ROLE_POLICY = "policy"
ROLE_STORAGE = "workspace"
ROLE_CREDENTIALS = "credentials"
# The session's model gateway (its own pod; see backends/openshift/gateway.py).
ROLE_GATEWAY = "gateway"


# Created by ``paude setup``; sessions only reference them (``optional: true``).
GCLOUD_SECRET = "paude-gcloud-adc"
GCLOUD_KEY = "application_default_credentials.json"
GITCONFIG_CONFIGMAP = "paude-gitconfig"
GITCONFIG_KEY = "gitconfig"
CLAUDE_SECRET = "paude-claude-settings"
CLAUDE_KEY = "settings.json"

DEFAULT_IMAGE = "quay.io/paude/paude:0.1.0"
PROXY_IMAGE_NAME = "paude-proxy"
DEFAULT_PROXY_IMAGE = "quay.io/paude/paude-proxy:0.1.0"
GATEWAY_IMAGE_NAME = "paude-gateway"
DEFAULT_GATEWAY_IMAGE = "quay.io/paude/paude-gateway:0.1.0"
DEFAULT_STORAGE = "10Gi"
# The agent reaches its proxy by the proxy Service's ClusterIP, never by a
# name (its NetworkPolicy allows no DNS). The address exists once the Service
# does: a plan made before shows this in its place, and the backend puts the
# real one in (manifests.with_proxy_address) before the agent is applied.
PROXY_ADDRESS_PENDING = "PROXY-CLUSTER-IP"
# The same for the session's gateway Service: the agent pod's hosts file
# (hostAliases) maps the gateway's name to it.
GATEWAY_ADDRESS_PENDING = "GATEWAY-CLUSTER-IP"
# The group that owns the workspace volume off OpenShift (the pod's fsGroup):
# a fresh volume's root is root's and 0755, and the agent runs as AGENT_UID.
WORKSPACE_FS_GROUP = AGENT_UID
# The API group of SecurityContextConstraints: where it is served, the SCC
# (restricted-v2) picks the fsGroup from the namespace's range itself and
# refuses any other.
SCC_API = "security.openshift.io/v1"
# The proxy's credential (one per proxy, so per allowlist): the agent pods get
# the password from the proxy's auth Secret as this variable, which Kubernetes
# expands into their proxy URL ($(VAR) in a later variable's value); the proxy
# mounts only the Secret's htpasswd key. See proxy.build_proxy_auth_secret.
PROXY_USER = "paude"
PROXY_PASSWORD_ENV = "PAUDE_PROXY_PASSWORD"
PROXY_PASSWORD_KEY = "password"
PROXY_HTPASSWD_KEY = "htpasswd"

# Re-exported: the agent pod's facts live in agentpod.py (no heavy imports).
__all__ = ["AGENT_CONTAINER", "PROXY_PORT", "ROLE_AGENT", "agent_name", "agent_pod_name"]


@dataclass(frozen=True)
class ClusterSettings:
    """Per-namespace inputs of the builders (resolved by the backend, never read here)."""

    namespace: str
    image: str = DEFAULT_IMAGE
    proxy_image: str = DEFAULT_PROXY_IMAGE
    gateway_image: str = DEFAULT_GATEWAY_IMAGE
    resources: Resources = field(default_factory=Resources)
    proxy_resources: Resources = PROXY_RESOURCES
    timeouts: Timeouts = field(default_factory=Timeouts)
    storage: str = DEFAULT_STORAGE
    storage_class: str | None = None
    egress_firewall: bool = False
    pull_secret: str | None = None  # an image pull Secret both pods reference
    # The agent pod's fsGroup; None on OpenShift, whose SCC assigns one.
    fs_group: int | None = WORKSPACE_FS_GROUP


def sibling_proxy_image(image: str, name: str = PROXY_IMAGE_NAME) -> str:
    """Return the proxy (or another ``name``) image pushed beside ``image``: same path and tag.

    ``registry.example/team/paude-agent:1`` -> ``registry.example/team/paude-proxy:1``.
    """
    path = image.split("@", 1)[0]  # a digest names the agent image only
    head, slash, last = path.rpartition("/")
    tag = last.partition(":")[2]
    sibling = f"{head}{slash}{name}"
    return f"{sibling}:{tag}" if tag else sibling


def cluster_settings(
    config: BackendConfig,
    namespace: str,
    *,
    egress_firewall: bool = False,
    scc: bool = False,
) -> ClusterSettings:
    """Return the builders' settings from the ``backend`` section of paude.json.

    ``scc``: the cluster has OpenShift's SecurityContextConstraints (no fsGroup of ours).
    """
    return ClusterSettings(
        namespace=namespace,
        image=config.image or DEFAULT_IMAGE,
        proxy_image=sibling_proxy_image(config.image) if config.image else DEFAULT_PROXY_IMAGE,
        gateway_image=sibling_proxy_image(config.image, GATEWAY_IMAGE_NAME) if config.image
        else DEFAULT_GATEWAY_IMAGE,
        resources=config.resources,
        proxy_resources=config.proxy_resources,
        timeouts=config.timeout,
        egress_firewall=egress_firewall,
        pull_secret=config.pull_secret,
        fs_group=None if scc else WORKSPACE_FS_GROUP,
    )


def proxy_id(allowlist: Allowlist) -> str:
    """Return a short, stable id of an allowlist: sessions with equal lists share a proxy.

    The hash is taken once, when the allowlist is parsed.
    """
    return allowlist.digest[:10]


def proxy_name(allowlist: Allowlist) -> str:
    """Return the name of the Deployment, Service and ConfigMap of an allowlist's proxy."""
    return proxy_object_name(proxy_id(allowlist))


def proxy_object_name(pid: str) -> str:
    """Return :func:`proxy_name` from the proxy's id (the ``paude.io/proxy`` label)."""
    return f"paude-proxy-{pid}"


def proxy_auth_name(domains: Allowlist) -> str:
    """Return the name of the Secret holding an allowlist's proxy credential."""
    return f"{proxy_name(domains)}-auth"


def proxy_url(address: str) -> str:
    """Return the ``HTTP(S)_PROXY`` URL of a proxy Service at ClusterIP ``address``.

    Its password is a reference, ``$(PAUDE_PROXY_PASSWORD)``, which the
    kubelet fills in from the variable of that name: never in the spec.
    """
    host = f"[{address}]" if ":" in address else address
    return f"http://{PROXY_USER}:$({PROXY_PASSWORD_ENV})@{host}:{PROXY_PORT}"


def env_secret_name(session: str) -> str:
    """Return the name of the Secret holding ``session``'s secret environment values."""
    return f"paude-{session}-env"


def gateway_name(session: str) -> str:
    """Return the name of ``session``'s gateway Deployment, Service, Secret and policies."""
    return f"paude-{session}-gateway"


def workspace_claim(session: str) -> str:
    """Return the PVC name holding ``session``'s workspace."""
    return f"paude-{session}-workspace"


def labels(role: str, *, session: str | None = None, proxy: str | None = None) -> dict[str, str]:
    """Return paude's labels; shared objects (``session=None``) carry no session label.

    Shared objects omit ``paude.io/session`` rather than using a sentinel value,
    because any sentinel would also be a valid session name.
    """
    out = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ROLE: role}
    if session is not None:
        out[LABEL_SESSION] = session
    if proxy is not None:
        out[LABEL_PROXY] = proxy
    return out


def metadata(
    name: str, settings: ClusterSettings, obj_labels: dict[str, str], **annotations: str
) -> dict[str, Any]:
    """Return an object's ``metadata`` block."""
    meta: dict[str, Any] = {"name": name, "namespace": settings.namespace, "labels": obj_labels}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def selector_labels(role: str, *, proxy: str | None = None) -> dict[str, str]:
    """Return the labels that select paude's pods of ``role`` (and of one proxy)."""
    out = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ROLE: role}
    if proxy is not None:
        out[LABEL_PROXY] = proxy
    return out


def restricted_container_context() -> dict[str, Any]:
    """Return a container securityContext that passes PodSecurity ``restricted``.

    No ``runAsUser``: OpenShift's ``restricted-v2`` assigns an arbitrary UID
    from the namespace's range, and the images run under any UID with GID 0.
    """
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod_fields(pull_secret: str | None = None) -> dict[str, Any]:
    """Return the pod-level fields both paude pods share (and their image pull Secret)."""
    fields: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if pull_secret:
        fields["imagePullSecrets"] = [{"name": pull_secret}]
    return fields


def container_resources(resources: Resources) -> dict[str, dict[str, str]]:
    """Return a container's ``resources`` block from config.

    Extended resources (``nvidia.com/gpu``) pass through as given; the
    scheduler then places the pod on a node that has them. ``pids`` is not a
    container resource in Kubernetes (the kubelet's ``podPidsLimit`` is).
    """
    out: dict[str, dict[str, str]] = {}
    for key, amounts in (("requests", resources.requests), ("limits", resources.limits)):
        values = {k: v for k, v in (("cpu", amounts.cpu), ("memory", amounts.memory)) if v}
        values.update(amounts.extended)
        if values:
            out[key] = values
    return out
