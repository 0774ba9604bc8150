"""Pure builders for a session's objects and the ordered plan that applies them.

No I/O, no clock, no environment: every input is an argument, so
``--dry-run``, ``paude manifests`` and ``start_session`` share one output.

A session is a StatefulSet of one replica whose pod mounts a separately
created PVC at ``/workspace``. A StatefulSet (not a bare Pod) brings an
evicted or deleted pod back by itself, with the same name and volume, and
never runs two pods of the session at once (a Deployment's rolling update
would, and a ReadWriteOnce volume or one tmux session cannot be shared).
The PVC is its own object (not a ``volumeClaimTemplate``) so it is labelled
like everything else, created first, and outlives ``paude stop`` on purpose.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from paude.backends.base import SessionSpec
from paude.backends.openshift.endpoints import build_endpoints_step
from paude.backends.openshift.gateway import (
    build_gateway_objects,
    gateway_host_aliases,
    has_gateway,
    is_gateway_service,
    with_gateway_address,
)
from paude.backends.openshift.objects import (
    AGENT_CONTAINER,
    CLAUDE_SECRET,
    GCLOUD_KEY,
    GCLOUD_SECRET,
    GITCONFIG_CONFIGMAP,
    GITCONFIG_KEY,
    LABEL_PROXY,
    PROXY_ADDRESS_PENDING,
    PROXY_PASSWORD_ENV,
    PROXY_PASSWORD_KEY,
    ROLE_AGENT,
    ROLE_STORAGE,
    ClusterSettings,
    agent_name,
    container_resources,
    env_secret_name,
    labels,
    metadata,
    proxy_auth_name,
    proxy_id,
    proxy_url,
    restricted_container_context,
    restricted_pod_fields,
    workspace_claim,
)
from paude.backends.openshift.policies import (
    build_agent_policy,
    build_egress_firewall,
    build_netpol_check_container,
    build_open_agent_policy,
    build_proxy_policy,
)
from paude.backends.openshift.proxy import (
    build_proxy_configmap,
    build_proxy_deployment,
    build_proxy_service,
)
from paude.facts import (
    CLAUDE_SEED_DIR,
    CREDENTIALS_ROOT,
    DEFAULT_WORKSPACE,
    ENTRYPOINT_PATH,
    STATE_DIR,
    TMUX_SESSION,
)
from paude.gateway.policy import GATEWAY_HOST
from paude.naming import LABEL_NETWORK, LABEL_WORKSPACE
from paude.plan import EndpointsManifest, Manifest, Plan

YOLO_FLAG = "--dangerously-skip-permissions"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


def _network(spec: SessionSpec) -> str:
    return spec.network.value


def _agent_labels(spec: SessionSpec) -> dict[str, str]:
    proxy = None if spec.allow_network else proxy_id(spec.allowed_domains)
    out = labels(ROLE_AGENT, session=spec.name, proxy=proxy)
    out[LABEL_NETWORK] = _network(spec)
    return out


def build_workspace_claim(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """Return the PVC that holds the session's workspace (kept by ``paude stop``)."""
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.storage}},
    }
    if settings.storage_class:
        claim["storageClassName"] = settings.storage_class
    # The proxy's id too: applied first, the claim tells a `paude stop` after an
    # interrupted start which proxy that start was making.
    proxy = None if spec.allow_network else proxy_id(spec.allowed_domains)
    claim_labels = {**labels(ROLE_STORAGE, session=spec.name, proxy=proxy),
                    LABEL_NETWORK: _network(spec)}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            **metadata(workspace_claim(spec.name), settings, claim_labels),
            "annotations": {LABEL_WORKSPACE: str(spec.workspace)},
        },
        "spec": claim,
    }


def secret_env_keys(spec: SessionSpec) -> list[str]:
    """Return the keys of ``spec.env`` whose values belong in a Secret (API keys, tokens)."""
    return sorted(key for key in spec.env if _SECRET_NAME.search(key))


def _agent_env(spec: SessionSpec, settings: ClusterSettings) -> list[dict[str, Any]]:
    env = {"PAUDE_WORKSPACE": DEFAULT_WORKSPACE, "PAUDE_SESSION": spec.name}
    # A stopped session waits in its restarted container for paude to resume it.
    env["PAUDE_ON_STOP"] = "wait"
    for key, value in (("PAUDE_TIMEOUT_IDLE", settings.timeouts.idle),
                       ("PAUDE_TIMEOUT_MAX", settings.timeouts.max)):
        if value:
            env[key] = value
    if spec.pass_credentials:  # --allow-network --pass-credentials: the old way
        env["GOOGLE_APPLICATION_CREDENTIALS"] = f"{CREDENTIALS_ROOT}/gcloud/{GCLOUD_KEY}"
    env["GIT_CONFIG_GLOBAL"] = f"{CREDENTIALS_ROOT}/git/{GITCONFIG_KEY}"
    # The workspace volume's root is root's (the agent has its group: fsGroup),
    # and git refuses a repository there ("dubious ownership") unless its path
    # is safe.directory. These variables are git's command scope, protected
    # configuration, the only kind it takes safe.directory from.
    env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": DEFAULT_WORKSPACE}
    out: list[dict[str, Any]] = []
    if not spec.allow_network:
        # First: the proxy URLs below refer to it ($(VAR) expands only earlier ones).
        auth = {"name": proxy_auth_name(spec.allowed_domains), "key": PROXY_PASSWORD_KEY}
        out.append({"name": PROXY_PASSWORD_ENV, "valueFrom": {"secretKeyRef": auth}})
        url = proxy_url(PROXY_ADDRESS_PENDING)
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[key] = url
        # The gateway is called directly, never through the proxy.
        direct = ["localhost", "127.0.0.1", "::1", *([GATEWAY_HOST] if has_gateway(spec) else [])]
        env["NO_PROXY"] = env["no_proxy"] = ",".join(direct)
    # Points the agent's model calls at the gateway (same variables as on podman).
    env.update(spec.model_env if has_gateway(spec) else {})
    secret_keys = secret_env_keys(spec)
    env.update({k: v for k, v in spec.env.items() if k not in secret_keys})
    out += [{"name": k, "value": v} for k, v in env.items()]
    ref = env_secret_name(spec.name)
    out += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": ref, "key": k}}} for k in secret_keys
    ]
    return out


def _credential_volumes(
    spec: SessionSpec,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The agent's files from ``paude setup``: git config and Claude settings.

    The Google ADC only with ``--allow-network --pass-credentials``; every
    other session's model credential is its gateway's (never the agent's).
    """
    volumes = [
        {"name": "git", "configMap": {"name": GITCONFIG_CONFIGMAP, "optional": True}},
        {"name": "claude", "secret": {"secretName": CLAUDE_SECRET, "optional": True}},
    ]
    paths = {"git": f"{CREDENTIALS_ROOT}/git", "claude": CLAUDE_SEED_DIR}
    if spec.pass_credentials:
        volumes.append({"name": "gcloud",
                        "secret": {"secretName": GCLOUD_SECRET, "optional": True}})
        paths["gcloud"] = f"{CREDENTIALS_ROOT}/gcloud"
    mounts = [{"name": name, "mountPath": path, "readOnly": True} for name, path in paths.items()]
    return volumes, mounts


def _agent_container(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    # Ready: the agent's tmux runs. Alive: that, or the session waits stopped
    # (a timeout or OOM ended it; the entrypoint waits for paude to resume it).
    ready = {"exec": {"command": ["tmux", "has-session", "-t", TMUX_SESSION]}, "periodSeconds": 5}
    alive = {"exec": {"command": [ENTRYPOINT_PATH, "--paude-probe"]}, "periodSeconds": 30}
    _, cred_mounts = _credential_volumes(spec)
    return {
        "name": AGENT_CONTAINER,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [*([YOLO_FLAG] if spec.yolo else []), *spec.claude_args],
        "env": _agent_env(spec, settings),
        "workingDir": DEFAULT_WORKSPACE,
        "resources": container_resources(settings.resources),
        "securityContext": restricted_container_context(),
        "readinessProbe": ready,
        "livenessProbe": {**alive, "initialDelaySeconds": 30, "failureThreshold": 3},
        # The entrypoint writes why it stopped the session ("idle 4h") here.
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [{"name": "workspace", "mountPath": DEFAULT_WORKSPACE},
                         {"name": "state", "mountPath": STATE_DIR}, *cred_mounts],
    }


def _agent_pod_fields(settings: ClusterSettings) -> dict[str, Any]:
    """The restricted pod fields, and the workspace volume's group.

    A new volume's root belongs to root with mode 0755 on most storage (a
    fresh filesystem): the kubelet gives it to ``fsGroup`` (group-writable,
    setgid) when it mounts it. ``OnRootMismatch`` skips the recursive change
    when the root already matches (a large workspace on a restart). Without
    ``fs_group`` (OpenShift) the SCC sets the fsGroup from the namespace's range.
    """
    fields = restricted_pod_fields(settings.pull_secret)
    context = {**fields["securityContext"], "fsGroupChangePolicy": "OnRootMismatch"}
    if settings.fs_group is not None:
        context["fsGroup"] = settings.fs_group
    return {**fields, "securityContext": context}


def _init_containers(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """A restricted session's agent starts only where its NetworkPolicy is enforced."""
    if spec.allow_network:
        return {}
    return {"initContainers": [build_netpol_check_container(settings.image)]}


def build_agent_statefulset(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """Return the session's StatefulSet: one agent pod running tmux session ``paude``."""
    pod_labels = _agent_labels(spec)
    cred_volumes, _ = _credential_volumes(spec)
    workspace = {
        "name": "workspace",
        "persistentVolumeClaim": {"claimName": workspace_claim(spec.name)},
    }
    meta = metadata(agent_name(spec.name), settings, pod_labels)
    meta["annotations"] = {LABEL_WORKSPACE: str(spec.workspace)}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "serviceName": agent_name(spec.name),
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels(ROLE_AGENT, session=spec.name)},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    **_agent_pod_fields(settings),
                    "terminationGracePeriodSeconds": 10,
                    **_init_containers(spec, settings),
                    # The gateway's name, at its Service's ClusterIP (the agent has no DNS).
                    **({"hostAliases": gateway_host_aliases()} if has_gateway(spec) else {}),
                    "containers": [_agent_container(spec, settings)],
                    # Survives a container restart, not the pod: a stop's reason.
                    "volumes": [workspace, {"name": "state", "emptyDir": {}}, *cred_volumes],
                },
            },
        },
    }


def build_network_objects(
    spec: SessionSpec, settings: ClusterSettings, *, by_labels: bool = False
) -> list[dict[str, Any]]:
    """Return the policies and proxy objects of a session.

    An ``--allow-network`` session gets no proxy and open egress, but still
    accepts no ingress. ``by_labels``: see :func:`build_session_objects`.
    """
    if spec.allow_network:
        return [build_open_agent_policy(spec.name, settings)]
    domains = spec.allowed_domains
    objs = [build_agent_policy(domains, settings), build_proxy_policy(domains, settings)]
    if settings.egress_firewall:
        objs.append(build_egress_firewall(domains, settings))
    objs += [
        build_proxy_configmap(domains, settings),
        build_proxy_deployment(domains, settings),
        build_proxy_service(domains, settings, by_labels=by_labels),
    ]
    return objs


def build_session_objects(
    spec: SessionSpec, settings: ClusterSettings, *, by_labels: bool = False
) -> list[dict[str, Any]]:
    """Return every object of a session, in apply order.

    The workspace PVC comes first: it carries the session's label and its
    proxy's, so a ``paude stop`` after a start killed at any later point finds
    the proxy that start made (the proxy's objects carry no session label).
    Then the policies, so the agent pod never exists without them (lightkube's
    ``sort_objects`` ranks NetworkPolicies with pods, hence our own order); the
    StatefulSet comes last because its pod needs the PVC, proxy, gateway and
    policies (and the proxy's and gateway's Service addresses).

    ``by_labels``: the proxy's and gateway's Services select their pods by
    label (an export: no paude is there to write their endpoints).
    """
    return [
        build_workspace_claim(spec, settings),
        *build_network_objects(spec, settings, by_labels=by_labels),
        *build_gateway_objects(spec, settings, by_labels=by_labels),
        build_agent_statefulset(spec, settings),
    ]


def proxy_address(service: dict[str, Any]) -> str:
    """Return the ClusterIP of an applied proxy Service (the API server assigns it)."""
    address = service.get("spec", {}).get("clusterIP")
    if not address or address == "None":
        raise ValueError(f"Service {service['metadata']['name']} has no ClusterIP")
    return str(address)


def with_proxy_address(obj: dict[str, Any], address: str) -> dict[str, Any]:
    """Return ``obj`` with the proxy's ClusterIP where a plan has its placeholder.

    Only the agent StatefulSet's proxy variables hold it; any other object is
    returned as it is.
    """
    if obj.get("kind") != "StatefulSet":
        return obj
    url = proxy_url(address)
    pending = proxy_url(PROXY_ADDRESS_PENDING)
    out = copy.deepcopy(obj)
    for container in out["spec"]["template"]["spec"]["containers"]:
        for var in container.get("env", []):
            if var.get("value") == pending:
                var["value"] = url
    return out


def _service_role(obj: dict[str, Any]) -> str | None:
    """Return "proxy" or "gateway" for those Services (paude writes their endpoints)."""
    if obj.get("kind") != "Service":
        return None
    if obj["metadata"].get("labels", {}).get(LABEL_PROXY):
        return "proxy"
    return "gateway" if is_gateway_service(obj) else None


def service_address(applied: dict[str, Any]) -> dict[str, str]:
    """Return ``{"proxy" or "gateway": ClusterIP}`` for an applied Service of those, else ``{}``."""
    role = _service_role(applied)
    return {role: proxy_address(applied)} if role else {}


def with_addresses(obj: dict[str, Any], addresses: dict[str, str]) -> dict[str, Any]:
    """Return ``obj`` with the known Service addresses (:func:`service_address`) put in."""
    if "proxy" in addresses:
        obj = with_proxy_address(obj, addresses["proxy"])
    if "gateway" in addresses:
        obj = with_gateway_address(obj, addresses["gateway"])
    return obj


def build_session_plan(spec: SessionSpec, settings: ClusterSettings) -> Plan:
    """Return the session's objects as ``Manifest`` steps in apply order.

    Then the proxy's and gateway's EndpointSlices, written once their pods
    are ready (:mod:`paude.backends.openshift.endpoints`).
    """
    objs = build_session_objects(spec, settings)
    steps: list[Manifest | EndpointsManifest] = [
        Manifest(obj, f"{obj['kind']} {obj['metadata']['name']}") for obj in objs
    ]
    steps += [build_endpoints_step(obj, settings) for obj in objs if _service_role(obj)]
    return Plan(tuple(steps))

