"""One GET from the Kubernetes API with the standard library: the quick reattach's lookup.

The full backend talks to the API through lightkube (``client.py``), whose
import alone costs more than a whole ``kubectl exec``. The quick reattach
needs one answer (is the session's agent pod there and Ready?), so this
module reads the kubeconfig the way lightkube does (``KUBECONFIG`` or
``~/.kube/config``, one file; its context, that context's cluster and user)
and makes that one request with ``ssl`` and ``http.client``.

Only what plainly works here is handled: a bearer token (``token`` or
``tokenFile``) or a client certificate (files or inline data), and the
cluster's CA (file or data) or the system's. Anything else (an exec plugin,
an auth-provider, basic auth, ``insecure-skip-tls-verify``, ``proxy-url``,
``tls-server-name``, an HTTPS proxy in the environment, in-cluster config,
several files in ``KUBECONFIG``) gives ``None``, and the full CLI, through
lightkube, takes over. So does any failure: this module never explains one.
"""

from __future__ import annotations

import base64
import os

from paude.backends.openshift.agentpod import pick_namespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping
    from typing import Any

SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_KUBECONFIG = "~/.kube/config"
REQUEST_TIMEOUT = 30.0
_PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
# What these keys ask for is lightkube's to handle (or not at all here).
_CLUSTER_UNHANDLED = ("insecure-skip-tls-verify", "proxy-url", "tls-server-name")
_USER_UNHANDLED = ("exec", "auth-provider", "username", "password", "as", "as-groups")


class ApiTarget:
    """Where and how to reach the API server for one namespace."""

    __slots__ = ("cluster", "namespace", "server", "user", "where")

    def __init__(self, *, server: str, namespace: str, cluster: dict[str, Any],
                 user: dict[str, Any], where: str) -> None:  # fmt: skip
        self.server, self.namespace = server, namespace
        self.cluster, self.user, self.where = cluster, user, where


def kubeconfig_path(env: Mapping[str, str]) -> str | None:
    """Return the one kubeconfig file lightkube would read, or ``None`` when not that plain."""
    if os.path.exists(SERVICE_ACCOUNT_TOKEN):
        return None  # in-cluster config comes first in lightkube
    path = env.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    if os.pathsep in path:
        return None
    home = env.get("HOME")
    return os.path.join(home, path[2:]) if path.startswith("~/") and home else \
        os.path.expanduser(path)


def _named(items: Any, name: str, key: str) -> dict[str, Any] | None:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") == name and isinstance(item.get(key), dict):
            found: dict[str, Any] = item[key]
            return found
    return None


def build_target(conf: Any, *, where: str, context: str | None,
                 namespace: str | None) -> ApiTarget | None:  # fmt: skip
    """Return the API target of ``context`` (or the current one) in ``conf``, or ``None``.

    ``conf`` is the parsed kubeconfig and ``where`` its directory (for
    relative file names). Pure: reads no file.
    """
    if not isinstance(conf, dict):
        return None
    name = context or conf.get("current-context")
    ctx = _named(conf.get("contexts"), str(name), "context") if name else None
    if ctx is None:
        return None
    cluster = _named(conf.get("clusters"), str(ctx.get("cluster")), "cluster")
    user = _named(conf.get("users"), str(ctx.get("user")), "user") if ctx.get("user") else {}
    if cluster is None or user is None:
        return None
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith("https://"):
        return None
    if any(cluster.get(k) for k in _CLUSTER_UNHANDLED) or any(user.get(k) for k in
                                                              _USER_UNHANDLED):  # fmt: skip
        return None
    ns = ctx.get("namespace")
    return ApiTarget(server=server.rstrip("/"), cluster=cluster, user=user, where=where,
                     namespace=pick_namespace(namespace, ns if isinstance(ns, str) else None))


def read_target(env: Mapping[str, str], *, context: str | None,
                namespace: str | None) -> ApiTarget | None:  # fmt: skip
    """Read the kubeconfig; return the API target for ``context``, or ``None`` (see the module)."""
    if any(env.get(k) for k in _PROXY_ENV):
        return None
    path = kubeconfig_path(env)
    if path is None or not os.path.isfile(path):
        return None
    import yaml  # ~25 ms, only here: a kubeconfig is YAML

    try:
        with open(path, encoding="utf-8") as handle:
            conf = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return build_target(conf, where=os.path.dirname(path), context=context, namespace=namespace)


def _file(target: ApiTarget, name: str) -> str:
    return name if os.path.isabs(name) else os.path.join(target.where, name)


def _memfile(data: str) -> int:
    """Return a memory file holding base64 ``data`` decoded (never written to disk)."""
    fd = os.memfd_create("paude-kubeconfig")
    os.write(fd, base64.b64decode(data))
    return fd


def build_ssl_context(target: ApiTarget) -> ssl.SSLContext:
    """Return the TLS context: the cluster's CA (else the system's), the user's certificate."""
    import ssl

    cluster, user = target.cluster, target.user
    if cluster.get("certificate-authority"):
        ctx = ssl.create_default_context(cafile=_file(target, cluster["certificate-authority"]))
    elif cluster.get("certificate-authority-data"):
        pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
        ctx = ssl.create_default_context(cadata=pem)
    else:
        ctx = ssl.create_default_context()
    if user.get("client-certificate-data") and user.get("client-key-data"):
        fds = [_memfile(user["client-certificate-data"]), _memfile(user["client-key-data"])]
        try:
            ctx.load_cert_chain(*(f"/proc/self/fd/{fd}" for fd in fds))
        finally:
            for fd in fds:
                os.close(fd)
    elif user.get("client-certificate") and user.get("client-key"):
        ctx.load_cert_chain(_file(target, user["client-certificate"]),
                            _file(target, user["client-key"]))
    return ctx


def _bearer(target: ApiTarget) -> str | None:
    user = target.user
    if user.get("token"):
        return str(user["token"]).strip()
    if user.get("tokenFile"):
        with open(_file(target, user["tokenFile"]), encoding="utf-8") as handle:
            return handle.read().strip()
    return None


def get_json(target: ApiTarget, path: str) -> dict[str, Any] | None:
    """GET ``path`` from the API server; return the JSON object, or ``None`` on any failure."""
    import http.client
    import json
    import ssl
    from urllib.parse import urlsplit

    url = urlsplit(target.server)
    try:
        conn = http.client.HTTPSConnection(url.hostname or "", url.port or 443,
                                           context=build_ssl_context(target),
                                           timeout=REQUEST_TIMEOUT)  # fmt: skip
        headers = {"Accept": "application/json", "User-Agent": "paude"}
        token = _bearer(target)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request("GET", url.path + path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        data = json.loads(body) if response.status == 200 else None
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError, KeyError):
        return None
    return data if isinstance(data, dict) else None
