"""Pure builders for the squid proxy: ConfigMap, Deployment and Service.

One proxy serves every session in the namespace that has the same allowlist
(its name carries a hash of the list), so two sessions with different lists
never widen each other's allowlist through a shared squid.conf.
"""

from __future__ import annotations

import hashlib
from typing import Any

from paude.backends.openshift.objects import (
    ROLE_PROXY,
    ClusterSettings,
    labels,
    metadata,
    proxy_id,
    proxy_name,
    restricted_container_context,
    restricted_pod_fields,
    selector_labels,
)
from paude.domains import Allowlist
from paude.facts import PROXY_PORT, SQUID_CONF_DIR, SQUID_CONF_NAME
from paude.squid import render_squid_conf

# The proxy image runs `squid -N -f SQUID_CONF_PATH`: the ConfigMap's key is mounted there.
SQUID_CONF_KEY = SQUID_CONF_NAME
# squid writes its logs, spool and runtime files here; the root filesystem is read-only.
_WRITABLE_DIRS = {
    "logs": "/var/log/squid",
    "spool": "/var/spool/squid",
    "run": "/run/squid",
    "tmp": "/tmp",
}
_PROXY_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}


def build_proxy_configmap(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the ConfigMap holding the same squid.conf the Podman backend uses."""
    pid = proxy_id(domains)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(proxy_name(domains), settings, labels(ROLE_PROXY, proxy=pid)),
        "data": {SQUID_CONF_KEY: render_squid_conf(domains)},
    }


def _proxy_container(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    probe = {"tcpSocket": {"port": PROXY_PORT}, "periodSeconds": 10}
    mounts = [{"name": "conf", "mountPath": SQUID_CONF_DIR, "readOnly": True}]
    mounts += [{"name": name, "mountPath": path} for name, path in _WRITABLE_DIRS.items()]
    return {
        "name": "squid",
        "image": settings.proxy_image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "proxy", "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
        "resources": _PROXY_RESOURCES,
        "securityContext": {**restricted_container_context(), "readOnlyRootFilesystem": True},
        "volumeMounts": mounts,
    }


def build_proxy_deployment(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the proxy Deployment (1 replica), restarted when its squid.conf changes."""
    pid = proxy_id(domains)
    conf_hash = hashlib.sha256(render_squid_conf(domains).encode()).hexdigest()[:16]
    volumes: list[dict[str, Any]] = [
        {"name": "conf", "configMap": {"name": proxy_name(domains)}},
    ]
    volumes += [{"name": name, "emptyDir": {}} for name in _WRITABLE_DIRS]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(proxy_name(domains), settings, labels(ROLE_PROXY, proxy=pid)),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(ROLE_PROXY, proxy=pid)},
            "template": {
                "metadata": {
                    "labels": labels(ROLE_PROXY, proxy=pid),
                    "annotations": {"paude.io/squid-conf-sha256": conf_hash},
                },
                "spec": {
                    **restricted_pod_fields(settings.pull_secret),
                    "containers": [_proxy_container(domains, settings)],
                    "volumes": volumes,
                },
            },
        },
    }


def build_proxy_service(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the ClusterIP Service on port 3128 in front of the proxy pods.

    ``targetPort`` equals the container port because NetworkPolicies match the
    pod's port after the Service's address translation.
    """
    pid = proxy_id(domains)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(proxy_name(domains), settings, labels(ROLE_PROXY, proxy=pid)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(ROLE_PROXY, proxy=pid),
            "ports": [
                {"name": "proxy", "port": PROXY_PORT, "targetPort": PROXY_PORT, "protocol": "TCP"}
            ],
        },
    }
