"""Pure builders for the squid proxy: ConfigMap, Deployment, Service and its credential.

One proxy serves every session in the namespace that has the same allowlist
(its name carries a hash of the list), so two sessions with different lists
never widen each other's allowlist through a shared squid.conf.

The proxy serves only clients that send its credential (squid's basic auth):
NetworkPolicy keeps other pods away where it is enforced, and where it is
not (or a pod copies the agent's labels) the credential still does. The
credential is per proxy, so per allowlist: the sessions sharing a proxy
share its allowlist, so one session using another's credential gains nothing.

Beside squid the proxy pod runs two small containers of the same image, so
``paude blocked`` and ``paude allow`` work through the API alone: ``access-log``
prints squid's access.log (read as that container's pod log), and ``reload``
makes squid re-read its config whenever the kubelet updates the mounted
ConfigMap, then says so in its own log.
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
from paude.facts import (
    PROXY_PORT,
    SQUID_AUTH_DIR,
    SQUID_CONF_DIR,
    SQUID_CONF_NAME,
    SQUID_CONF_PATH,
)
from paude.squid import ACCESS_LOG, render_squid_conf

# The proxy image runs `squid -N -f SQUID_CONF_PATH`: the ConfigMap's key is mounted there.
SQUID_CONF_KEY = SQUID_CONF_NAME
# The proxy's htpasswd (the auth Secret's htpasswd key only) is mounted in SQUID_AUTH_DIR.
SQUID_AUTH_FILE = f"{SQUID_AUTH_DIR}/{PROXY_HTPASSWD_KEY}"
ACCESS_LOG_CONTAINER = "access-log"
RELOAD_CONTAINER = "reload"
# What the reload container prints once squid got the config with that hash.
LOADED_MARKER = "paude: squid.conf loaded "
# The kubelet updates a ConfigMap volume by swapping its ``..data`` symlink.
# squid has no pid file (squid.conf says ``pid_filename none``), so
# ``squid -k reconfigure`` cannot find it: SIGHUP is the same request, sent
# across the pod's shared process namespace.
_RELOAD_SCRIPT = """\
conf="$1" marker="$2"
loaded() { echo "$marker$(sha256sum < "$conf" | cut -c1-16)"; }
loaded
inotifywait -mq -e moved_to --format %f "$(dirname "$conf")" | while read -r name; do
  [ "$name" = ..data ] || continue
  for proc in /proc/[0-9]*; do
    [ "$(cat "$proc/comm" 2>/dev/null)" = squid ] && kill -HUP "${proc#/proc/}"
  done
  loaded
done
"""
_ACCESS_LOG_SCRIPT = 'exec tail -n +1 -F "$1"'
# Probes: the log is there to read; the watcher runs (else the kubelet restarts it).
_WATCHER_PROBE = 'for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] && exit 0;' \
    " done; exit 1"
_SIDECAR_RESOURCES = {
    "requests": {"cpu": "5m", "memory": "8Mi"},
    "limits": {"cpu": "100m", "memory": "32Mi"},
}
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


def conf_hash(text: str) -> str:
    """Return the short hash of a squid.conf (what the reload container prints)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sidecar(name: str, command: list[str], probe: list[str], settings: ClusterSettings,
             mount: dict[str, Any]) -> dict[str, Any]:
    check = {"exec": {"command": probe}, "periodSeconds": 30}
    return {
        "name": name,
        "image": settings.proxy_image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "readinessProbe": check,
        "livenessProbe": {**check, "initialDelaySeconds": 10},
        "resources": _SIDECAR_RESOURCES,
        "securityContext": {**restricted_container_context(), "readOnlyRootFilesystem": True},
        "volumeMounts": [{**mount, "readOnly": True}],
    }


def _sidecars(settings: ClusterSettings) -> list[dict[str, Any]]:
    return [
        _sidecar(ACCESS_LOG_CONTAINER, ["sh", "-c", _ACCESS_LOG_SCRIPT, "sh", ACCESS_LOG],
                 ["test", "-r", ACCESS_LOG],
                 settings, {"name": "logs", "mountPath": _WRITABLE_DIRS["logs"]}),
        _sidecar(RELOAD_CONTAINER,
                 ["sh", "-c", _RELOAD_SCRIPT, "sh", SQUID_CONF_PATH, LOADED_MARKER],
                 ["sh", "-c", _WATCHER_PROBE, "sh", "inotifywait"],
                 settings, {"name": "conf", "mountPath": SQUID_CONF_DIR}),
    ]


def build_proxy_deployment(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the proxy Deployment (1 replica), restarted when its configured squid.conf changes.

    ``paude allow`` changes only the ConfigMap, which the running squid
    re-reads (the ``reload`` container): the template's hash stays.
    """
    pid = proxy_id(domains)
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
                    "annotations": {
                        "paude.io/squid-conf-sha256": conf_hash(render_proxy_conf(domains))
                    },
                },
                "spec": {
                    **restricted_pod_fields(settings.pull_secret),
                    # The reload container signals squid (same UID, no capability).
                    "shareProcessNamespace": True,
                    "containers": [_proxy_container(domains, settings), *_sidecars(settings)],
                    "volumes": volumes,
                },
            },
        },
    }


def build_proxy_service(
    domains: Allowlist, settings: ClusterSettings, *, by_labels: bool = False
) -> dict[str, Any]:
    """Return the ClusterIP Service on port 3128 in front of the proxy pod.

    It has no selector: paude writes its endpoint, the pod its Deployment
    made (see :mod:`paude.backends.openshift.endpoints`), so a pod given the
    proxy's labels never becomes one. ``by_labels`` (an export, where no
    paude writes endpoints) selects the proxy pods by label instead.
    ``targetPort`` equals the container port because NetworkPolicies match the
    pod's port after the Service's address translation.
    """
    pid = proxy_id(domains)
    spec: dict[str, Any] = {"type": "ClusterIP"}
    if by_labels:
        spec["selector"] = selector_labels(ROLE_PROXY, proxy=pid)
    spec["ports"] = [
        {"name": "proxy", "port": PROXY_PORT, "targetPort": PROXY_PORT, "protocol": "TCP"}
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(proxy_name(domains), settings, labels(ROLE_PROXY, proxy=pid)),
        "spec": spec,
    }


def build_proxy_conf_update(configmap: dict[str, Any], entries: Allowlist) -> dict[str, Any]:
    """Return the apply object that puts ``entries`` into a proxy's existing ConfigMap.

    Name and labels stay (they select the proxy by its configured allowlist).

    Raises:
        ValueError: an entry is not valid.
    """
    meta = configmap["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                     "labels": dict(meta.get("labels") or {})},
        "data": {SQUID_CONF_KEY: render_proxy_conf(entries)},
    }
