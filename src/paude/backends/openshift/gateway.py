"""Pure builders for a session's model gateway: its Secret, Deployment, Service and policies.

The gateway holds the session's model credential (the ADC, an API key or an
OAuth token) and is the agent's only way to the model API (see
:mod:`paude.gateway`). On a cluster it is its own pod, one per session, never
the agent's pod: the agent pod mounts no credential and has no
ServiceAccount token. The credential travels in a Secret named after the
session (``paude-<session>-gateway``), labelled with it and deleted with it,
mounted only by the gateway container; two sessions in one namespace never
share one, so one user's credential is never used for another's session.

The image and its arguments are the podman backend's
(:func:`paude.gateway.policy.build_gateway_args`). The agent reaches the
gateway's Service by its ClusterIP (no DNS for the agent): the agent pod's
hosts file maps :data:`~paude.gateway.policy.GATEWAY_HOST` to it, so the
agent's model variables (:func:`paude.auth.build_agent_model_env`) are the
same on both backends.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from pathlib import PurePosixPath
from typing import Any

from paude.backends.base import SessionSpec
from paude.backends.images import has_gateway as has_gateway  # re-exported: one definition
from paude.backends.openshift.objects import (
    GATEWAY_ADDRESS_PENDING,
    ROLE_AGENT,
    ROLE_CREDENTIALS,
    ROLE_GATEWAY,
    ROLE_POLICY,
    ClusterSettings,
    gateway_name,
    labels,
    metadata,
    restricted_container_context,
    restricted_pod_fields,
)
from paude.container.files import GATEWAY_UID
from paude.gateway.policy import (
    ANY_CLIENT,
    CONFIG_PATH,
    GATEWAY_HOST,
    GATEWAY_PORT,
    build_gateway_args,
)
from paude.naming import LABEL_ROLE

GATEWAY_CONTAINER = "gateway"
GATEWAY_SECRET_KEY = "config"  # the Secret's one key: the gateway's config JSON
# The gateway's template carries a short hash of its config, so a start with
# a changed credential restarts it (it reads the config once). A truncated
# SHA-256 of a long random secret tells nothing about it.
CONFIG_HASH_ANNOTATION = "paude.io/gateway-config-sha256"
_CONFIG_DIR = str(PurePosixPath(CONFIG_PATH).parent)
_CONFIG_FILE = PurePosixPath(CONFIG_PATH).name
# The gateway listens on every address of its pod (the pod IP is not known
# before): its policy admits only its session's agent.
_LISTEN = "0.0.0.0"
_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"},
              "limits": {"cpu": "500m", "memory": "256Mi"}}  # fmt: skip


def render_gateway_config(spec: SessionSpec) -> str:
    """Return the gateway's config JSON (the credential included: never print it)."""
    assert spec.model_auth is not None
    return spec.model_auth.gateway_config(ANY_CLIENT).to_json()


def _gateway_labels(session: str) -> dict[str, str]:
    return labels(ROLE_GATEWAY, session=session)


def _agent_selector(session: str) -> dict[str, str]:
    return labels(ROLE_AGENT, session=session)


def build_gateway_secret(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """Return the session's gateway Secret (values included: never exported or printed).

    A ``SecretManifest`` step of the start plan (``startplan.py``), like the
    session's env Secret: its values are never printed; the plan's
    Deployment only references it by name.
    """
    config = render_gateway_config(spec).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(gateway_name(spec.name), settings,
                             labels(ROLE_CREDENTIALS, session=spec.name)),
        "data": {GATEWAY_SECRET_KEY: base64.b64encode(config).decode()},
    }


def _gateway_container(settings: ClusterSettings) -> dict[str, Any]:
    probe = {"tcpSocket": {"port": GATEWAY_PORT}, "periodSeconds": 10}
    return {
        "name": GATEWAY_CONTAINER,
        "image": settings.gateway_image,
        "imagePullPolicy": "IfNotPresent",
        "args": build_gateway_args(_LISTEN),
        "ports": [{"name": "gateway", "containerPort": GATEWAY_PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "periodSeconds": 2},
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
        "resources": _RESOURCES,
        "securityContext": {**restricted_container_context(), "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "config", "mountPath": _CONFIG_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],  # fmt: skip
    }


def _pod_fields(settings: ClusterSettings) -> dict[str, Any]:
    """The restricted pod fields; the Secret's file belongs to the pod's fsGroup (mode 0440).

    Off OpenShift the fsGroup is the gateway image's user; on OpenShift
    (``fs_group`` None) the SCC assigns one from the namespace's range.
    """
    fields = restricted_pod_fields(settings.pull_secret)
    if settings.fs_group is not None:
        fields["securityContext"] = {**fields["securityContext"], "fsGroup": GATEWAY_UID}
    return fields


def build_gateway_deployment(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """Return the session's gateway Deployment (1 replica), the only mounter of its Secret."""
    name = gateway_name(spec.name)
    item = {"key": GATEWAY_SECRET_KEY, "path": _CONFIG_FILE, "mode": 0o440}
    digest = hashlib.sha256(render_gateway_config(spec).encode()).hexdigest()[:16]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, settings, _gateway_labels(spec.name)),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _gateway_labels(spec.name)},
            "template": {
                "metadata": {"labels": _gateway_labels(spec.name),
                             "annotations": {CONFIG_HASH_ANNOTATION: digest}},
                "spec": {
                    **_pod_fields(settings),
                    "terminationGracePeriodSeconds": 5,
                    "containers": [_gateway_container(settings)],
                    "volumes": [
                        # Not optional: without its credential the gateway does not start.
                        {"name": "config", "secret": {"secretName": name, "items": [item]}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def build_gateway_service(
    spec: SessionSpec, settings: ClusterSettings, *, by_labels: bool = False
) -> dict[str, Any]:
    """Return the ClusterIP Service in front of the session's gateway pod.

    No selector, as the proxy's (:func:`paude.backends.openshift.proxy.build_proxy_service`):
    paude writes its endpoint; ``by_labels`` (an export) selects by label.
    """
    port = {"name": "gateway", "port": GATEWAY_PORT, "targetPort": GATEWAY_PORT,
            "protocol": "TCP"}
    service_spec: dict[str, Any] = {"type": "ClusterIP"}
    if by_labels:
        service_spec["selector"] = _gateway_labels(spec.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(gateway_name(spec.name), settings, _gateway_labels(spec.name)),
        "spec": {**service_spec, "ports": [port]},
    }


def _port_policy(name: str, spec: SessionSpec, settings: ClusterSettings, *,
                 pods: dict[str, str], peers: dict[str, str], egress: bool) -> dict[str, Any]:
    """Return a policy on ``pods``: traffic with ``peers`` on the gateway's port only.

    Ingress to ``pods`` from ``peers``, or (``egress``) from ``pods`` to ``peers``.
    """
    direction, peer_key = ("Egress", "to") if egress else ("Ingress", "from")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, settings, labels(ROLE_POLICY, session=spec.name)),
        "spec": {
            "podSelector": {"matchLabels": pods},
            "policyTypes": [direction],
            direction.lower(): [{peer_key: [{"podSelector": {"matchLabels": peers}}],
                                 "ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]}],
        },
    }


def build_gateway_policy(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """Return the policy letting only the session's agent pod reach its gateway, on its port.

    Its egress is as open as the proxy's: what it forwards to is fixed in
    the gateway itself (model calls to the configured upstream only, see
    :func:`paude.gateway.policy.route`).
    """
    return _port_policy(gateway_name(spec.name), spec, settings,
                        pods=_gateway_labels(spec.name), peers=_agent_selector(spec.name),
                        egress=False)


def build_agent_gateway_policy(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """Return the policy adding one egress to the session's agent: its gateway's port."""
    return _port_policy(f"paude-{spec.name}-to-gateway", spec, settings,
                        pods=_agent_selector(spec.name), peers=_gateway_labels(spec.name),
                        egress=True)


def build_gateway_objects(
    spec: SessionSpec, settings: ClusterSettings, *, by_labels: bool = False
) -> list[dict[str, Any]]:
    """Return the gateway's objects in apply order (none without a gateway)."""
    if not has_gateway(spec):
        return []
    return [build_gateway_policy(spec, settings), build_agent_gateway_policy(spec, settings),
            build_gateway_deployment(spec, settings),
            build_gateway_service(spec, settings, by_labels=by_labels)]


def gateway_host_aliases() -> list[dict[str, Any]]:
    """Return the agent pod's ``hostAliases``: the gateway's name at its pending address."""
    return [{"ip": GATEWAY_ADDRESS_PENDING, "hostnames": [GATEWAY_HOST]}]


def is_gateway_service(obj: dict[str, Any]) -> bool:
    """Answer whether ``obj`` is a session's gateway Service."""
    role = obj.get("metadata", {}).get("labels", {}).get(LABEL_ROLE)
    return obj.get("kind") == "Service" and role == ROLE_GATEWAY


def with_gateway_address(obj: dict[str, Any], address: str) -> dict[str, Any]:
    """Return the agent StatefulSet with the gateway's ClusterIP in its hosts file.

    Any other object, or one without the placeholder, is returned as it is.
    """
    if obj.get("kind") != "StatefulSet":
        return obj
    out = copy.deepcopy(obj)
    for alias in out["spec"]["template"]["spec"].get("hostAliases", []):
        if alias.get("ip") == GATEWAY_ADDRESS_PENDING:
            alias["ip"] = address
    return out
