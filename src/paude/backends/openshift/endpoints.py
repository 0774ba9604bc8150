"""The proxy's and gateway's endpoints, written by paude (pure builders and checks).

Both Services have no selector: a Service that selects its pods by label
takes any pod with those labels as an endpoint, and labels are not a
secret, so a pod that anyone may create in the namespace with the proxy's
labels would get a share of the agents' requests. Instead paude writes each
Service's one EndpointSlice (named after it, labelled
``endpointslice.kubernetes.io/managed-by`` = :data:`SLICE_MANAGER`, which
Kubernetes' controllers leave alone) with the address of the pod that
paude's own Deployment made, found by its owners, not its labels: the pod's
controller is a ReplicaSet whose controller is the Deployment (by UID), and
the pod runs the Deployment's current template (its containers, their
images, commands, variables and mounts, and the volumes they mount). The
last check matters because a ReplicaSet adopts any orphan pod that matches
its selector: a copy of the proxy pod's labels becomes "owned" that way,
but not one that runs the template, and one that does runs paude's proxy.

A plan holds the slice as an :class:`~paude.plan.EndpointsManifest` step
with :data:`POD_ADDRESS_PENDING` for its address; the executor writes it
once the pod is ready, and entry (``paude``, ``attach``, ``exec``) writes
it again when that pod was replaced (a new pod has a new address).
"""

from __future__ import annotations

import copy
from typing import Any

from paude.backends.openshift.objects import ClusterSettings, metadata
from paude.plan import EndpointsManifest

# Where a plan's slice holds the pod address it gets at run time.
POD_ADDRESS_PENDING = "POD-IP"
# Kubernetes' own labels of an EndpointSlice: its Service, and who manages it.
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_SLICE_MANAGER = "endpointslice.kubernetes.io/managed-by"
SLICE_MANAGER = "paude.io"
SLICE_API = "discovery.k8s.io/v1"
# The fields of a container that decide what it runs and sees.
_CONTAINER_KEYS = ("name", "image", "command", "args", "env", "envFrom", "volumeMounts")


def _ports(service: dict[str, Any]) -> list[dict[str, Any]]:
    """The slice's ports: the Service's, by name (kube-proxy pairs them so)."""
    return [{"name": p["name"], "port": p["targetPort"], "protocol": p.get("protocol", "TCP")}
            for p in service["spec"]["ports"]]  # fmt: skip


def build_endpoint_slice(
    service: dict[str, Any], settings: ClusterSettings, pods: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Return the EndpointSlice of the selectorless ``service`` listing exactly ``pods``.

    Without ``pods`` (a plan) its one address is :data:`POD_ADDRESS_PENDING`.
    The slice is named after the Service and carries its labels.
    """
    meta = service["metadata"]
    slice_labels = {**meta["labels"], LABEL_SERVICE_NAME: meta["name"],
                    LABEL_SLICE_MANAGER: SLICE_MANAGER}  # fmt: skip
    endpoints = [_endpoint(pod) for pod in pods] if pods is not None else \
        [{"addresses": [POD_ADDRESS_PENDING], "conditions": {"ready": True}}]
    return {
        "apiVersion": SLICE_API,
        "kind": "EndpointSlice",
        "metadata": metadata(meta["name"], settings, slice_labels),
        "addressType": _address_type(endpoints),
        "ports": _ports(service),
        "endpoints": endpoints,
    }


def _address_type(endpoints: list[dict[str, Any]]) -> str:
    return "IPv6" if any(":" in e["addresses"][0] for e in endpoints) else "IPv4"


def _endpoint(pod: dict[str, Any]) -> dict[str, Any]:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    out: dict[str, Any] = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": True},
        "targetRef": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"],
                      "uid": meta["uid"]},  # fmt: skip
    }
    if spec.get("nodeName"):
        out["nodeName"] = spec["nodeName"]
    return out


def build_endpoints_step(service: dict[str, Any], settings: ClusterSettings) -> EndpointsManifest:
    """Return the plan step that writes ``service``'s slice once its Deployment's pod is ready.

    The Deployment has the Service's name (the proxy's and the gateway's do).
    """
    name = service["metadata"]["name"]
    return EndpointsManifest(
        build_endpoint_slice(service, settings),
        f"EndpointSlice {name}: the only endpoint of Service {name}, the ready pod that"
        f" Deployment {name} made (its address, {POD_ADDRESS_PENDING} here, is found then)",
        deployment=name,
    )


def with_pods(step: EndpointsManifest, pods: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the step's slice listing ``pods`` in place of the pending address."""
    out = copy.deepcopy(step.obj)
    out["endpoints"] = [_endpoint(pod) for pod in pods]
    out["addressType"] = _address_type(out["endpoints"])
    return out


def controller_ref(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """Return ``obj``'s owner reference to its controller of ``kind``, or None."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return dict(ref)
    return None


def _controller_uid(obj: dict[str, Any], kind: str) -> str | None:
    ref = controller_ref(obj, kind)
    return None if ref is None else str(ref.get("uid"))


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return (conditions.get("Ready") == "True" and bool(status.get("podIP"))
            and not pod["metadata"].get("deletionTimestamp"))  # fmt: skip


def _containers(spec: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [{k: c.get(k) for k in _CONTAINER_KEYS} for c in spec.get(key) or []]


def runs_template(pod: dict[str, Any], template: dict[str, Any]) -> bool:
    """Answer whether ``pod`` runs ``template``: its containers, and the volumes they mount.

    Both are defaulted by the API server alike; admission may add volumes
    (they are not mounted, as the mounts are compared) and change security
    contexts and resources, which are not compared.
    """
    spec, want = pod.get("spec") or {}, template.get("spec") or {}
    for key in ("initContainers", "containers"):
        if _containers(spec, key) != _containers(want, key):
            return False
    have = {v["name"]: v for v in spec.get("volumes") or []}
    return all(have.get(v["name"]) == v for v in want.get("volumes") or [])


def is_deployment_pod(
    pod: dict[str, Any], deployment: dict[str, Any], replicaset: dict[str, Any] | None
) -> bool:
    """Answer whether ``pod`` is a ready pod that ``deployment`` made, of its current template.

    ``replicaset`` is the pod's controller (None if it has none or it is gone).
    """
    return (made_by(pod, deployment, replicaset) and _ready(pod)
            and runs_template(pod, deployment["spec"]["template"]))  # fmt: skip


def made_by(
    pod: dict[str, Any], deployment: dict[str, Any], replicaset: dict[str, Any] | None
) -> bool:
    """Answer whether ``pod``'s controller is a ReplicaSet whose controller is ``deployment``.

    (A pod the ReplicaSet adopted counts too: see :func:`is_deployment_pod`.)
    """
    if replicaset is None:
        return False
    rs_uid = replicaset["metadata"].get("uid")
    return bool(_controller_uid(pod, "ReplicaSet") == rs_uid
                and _controller_uid(replicaset, "Deployment") == deployment["metadata"].get("uid"))


def slice_is_current(found: dict[str, Any] | None, pods: dict[str, dict[str, Any]]) -> bool:
    """Answer whether the slice ``found`` still lists ready pods only, by uid and address.

    ``pods`` maps uid to pod. A slice paude wrote listed its Deployment's pod
    then; while that pod lives, with the same address, nothing changed.
    """
    if found is None or not found.get("endpoints"):
        return False
    for endpoint in found["endpoints"]:
        pod = pods.get((endpoint.get("targetRef") or {}).get("uid", ""))
        if pod is None or not _ready(pod) or pod["status"]["podIP"] not in endpoint["addresses"]:
            return False
    return True
