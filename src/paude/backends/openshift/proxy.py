"""Pure builders for the squid proxy: ConfigMap, Deployment, Service and its credential.

One proxy serves every session in the namespace that has the same allowlist
(its name carries a hash of the list), so two sessions with different lists
never widen each other's allowlist through a shared squid.conf.

The proxy serves only clients that send its credential (squid's basic auth):
NetworkPolicy keeps other pods away where it is enforced, and where it is
not (or a pod copies the agent's labels) the credential still does. The
credential is per proxy, so per allowlist: the sessions sharing a proxy
share its allowlist, so one session using another's credential gains nothing.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from paude.backends.openshift.objects import (
    PROXY_HTPASSWD_KEY,
    PROXY_PASSWORD_KEY,
    PROXY_USER,
    ROLE_PROXY,
    ClusterSettings,
    container_resources,
    labels,
    metadata,
    proxy_auth_name,
    proxy_id,
    proxy_name,
    restricted_container_context,
    restricted_pod_fields,
    selector_labels,
)
from paude.domains import Allowlist
from paude.facts import PROXY_PORT, SQUID_AUTH_DIR, SQUID_CONF_DIR, SQUID_CONF_NAME
from paude.squid import render_squid_conf

# The proxy image runs `squid -N -f SQUID_CONF_PATH`: the ConfigMap's key is mounted there.
SQUID_CONF_KEY = SQUID_CONF_NAME
# The proxy's htpasswd (the auth Secret's htpasswd key only) is mounted in SQUID_AUTH_DIR.
SQUID_AUTH_FILE = f"{SQUID_AUTH_DIR}/{PROXY_HTPASSWD_KEY}"
# squid writes its logs, spool and runtime files here; the root filesystem is read-only.
_WRITABLE_DIRS = {
    "logs": "/var/log/squid",
    "spool": "/var/spool/squid",
    "run": "/run/squid",
    "tmp": "/tmp",
}


def render_proxy_conf(domains: Allowlist) -> str:
    """Return the proxy's squid.conf: the Podman backend's, plus the credential check."""
    return render_squid_conf(domains, auth_file=SQUID_AUTH_FILE)


def render_htpasswd(password: str) -> str:
    """Return the htpasswd line squid's ``basic_ncsa_auth`` checks ``password`` against.

    The unsalted-MD5 form that helper accepts (Python has no crypt(3) to
    make a salted one). The password is 256 random bits
    (``secrets.token_urlsafe(32)``), so no dictionary or rainbow table
    reaches it, and the proxy never holds it in clear at rest.
    """
    digest = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
    return f"{PROXY_USER}:{digest}\n"


def build_proxy_auth_secret(
    domains: Allowlist, settings: ClusterSettings, password: str
) -> dict[str, Any]:
    """Return the Secret with the proxy's credential (never exported: it holds the password).

    The agent pods read ``password``; the proxy mounts ``htpasswd`` only.
    """
    pid = proxy_id(domains)
    data = {PROXY_PASSWORD_KEY: password, PROXY_HTPASSWD_KEY: render_htpasswd(password)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(proxy_auth_name(domains), settings, labels(ROLE_PROXY, proxy=pid)),
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def parse_proxy_password(secret: dict[str, Any] | None) -> str | None:
    """Return the password an existing auth Secret holds, or None."""
    value = ((secret or {}).get("data") or {}).get(PROXY_PASSWORD_KEY)
    return base64.b64decode(value).decode() if value else None


def build_proxy_configmap(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the ConfigMap holding the proxy's squid.conf."""
    pid = proxy_id(domains)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(proxy_name(domains), settings, labels(ROLE_PROXY, proxy=pid)),
        "data": {SQUID_CONF_KEY: render_proxy_conf(domains)},
    }


def _proxy_container(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    probe = {"tcpSocket": {"port": PROXY_PORT}, "periodSeconds": 10}
    mounts = [{"name": "conf", "mountPath": SQUID_CONF_DIR, "readOnly": True},
              {"name": "auth", "mountPath": SQUID_AUTH_DIR, "readOnly": True}]  # fmt: skip
    mounts += [{"name": name, "mountPath": path} for name, path in _WRITABLE_DIRS.items()]
    return {
        "name": "squid",
        "image": settings.proxy_image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "proxy", "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
        "resources": container_resources(settings.proxy_resources),
        "securityContext": {**restricted_container_context(), "readOnlyRootFilesystem": True},
        "volumeMounts": mounts,
    }


def build_proxy_deployment(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the proxy Deployment (1 replica), restarted when its squid.conf changes."""
    pid = proxy_id(domains)
    conf_hash = hashlib.sha256(render_proxy_conf(domains).encode()).hexdigest()[:16]
    htpasswd = {"key": PROXY_HTPASSWD_KEY, "path": PROXY_HTPASSWD_KEY, "mode": 0o444}
    volumes: list[dict[str, Any]] = [
        {"name": "conf", "configMap": {"name": proxy_name(domains)}},
        # Not optional: without its credential file the proxy does not start.
        {"name": "auth", "secret": {"secretName": proxy_auth_name(domains), "items": [htpasswd]}},
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
