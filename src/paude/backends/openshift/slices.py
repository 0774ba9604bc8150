"""Write and repair the proxy's and gateway's EndpointSlices through the API.

The pure half (what a slice holds, which pod is paude's) is
:mod:`paude.backends.openshift.endpoints`. A start writes each slice once
its Deployment's pod is ready; entry repairs them (a replaced pod has a new
address), with two requests when nothing changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paude.backends.base import Reporter
from paude.backends.openshift.endpoints import (
    LABEL_SERVICE_NAME,
    LABEL_SLICE_MANAGER,
    SLICE_API,
    SLICE_MANAGER,
    build_endpoints_step,
    controller_ref,
    is_deployment_pod,
    made_by,
    slice_is_current,
    with_pods,
)
from paude.backends.openshift.objects import (
    LABEL_PROXY,
    ROLE_AGENT,
    ClusterSettings,
    gateway_name,
    proxy_object_name,
)
from paude.naming import LABEL_MANAGED_BY, LABEL_ROLE, LABEL_SESSION, MANAGED_BY
from paude.plan import EndpointsManifest, log_step

if TYPE_CHECKING:
    from paude.backends.openshift.client import KubeClient

# The Endpoints object the endpoints controller made while a Service had a
# selector; the mirroring controller copies it into a slice until it is gone.
_LEGACY_MANAGER = ("endpoints.kubernetes.io/managed-by", "endpoint-controller")


class SliceWriter:
    """Points the proxy's and gateway's Services at the pods their Deployments made."""

    def __init__(self, api: KubeClient, reporter: Reporter, *, timeout: float) -> None:
        self._api, self._reporter, self._timeout = api, reporter, timeout

    def write(self, step: EndpointsManifest, deployment: dict[str, Any] | None = None) -> None:
        """Wait for the ready pod ``step``'s Deployment made, then apply the slice listing it.

        ``deployment``: the Deployment as applied (else it is read).
        """
        log_step(step)
        if deployment is None:
            deployment = self._api.get("apps/v1", "Deployment", step.deployment)
            if deployment is None:
                return  # nothing to point at (the session has no such part)
        pod = self._wait_for_pod(deployment)
        self._api.apply(with_pods(step, [pod]))
        self._drop_other_slices(step.obj["metadata"]["name"])

    def _wait_for_pod(self, deployment: dict[str, Any]) -> dict[str, Any]:
        replicasets: dict[str, dict[str, Any] | None] = {}

        def owner(pod: dict[str, Any]) -> dict[str, Any] | None:
            ref = controller_ref(pod, "ReplicaSet")
            if ref is None:
                return None
            if ref["name"] not in replicasets:
                replicasets[ref["name"]] = self._api.get("apps/v1", "ReplicaSet", ref["name"])
            return replicasets[ref["name"]]

        name = deployment["metadata"]["name"]
        self._reporter.info(f"Waiting for the pod of Deployment {name}")
        return self._api.wait_pod_ready(
            labels=deployment["spec"]["selector"]["matchLabels"],
            owner=("Deployment", name),
            timeout=self._timeout,
            until=lambda pod: is_deployment_pod(pod, deployment, owner(pod)),
            # A pod given the same labels that cannot pull (or start) fails
            # nothing: only the Deployment's own pods' failures end the wait.
            mine=lambda pod: made_by(pod, deployment, owner(pod)),
        )

    def _drop_other_slices(self, service: str) -> None:
        """Delete any slice of ``service`` but paude's (left from when it had a selector)."""
        for found in self._api.list_objects(SLICE_API, "EndpointSlice",
                                            {LABEL_SERVICE_NAME: service}):  # fmt: skip
            meta = found["metadata"]
            if meta["name"] == service and meta["labels"].get(LABEL_SLICE_MANAGER) == SLICE_MANAGER:
                continue
            manager = meta["labels"].get(LABEL_SLICE_MANAGER, "nobody")
            self._reporter.warn(f"removed EndpointSlice {meta['name']} of Service {service}"
                                f" (made by {manager}, not paude)")
            legacy = self._api.get("v1", "Endpoints", service)
            if legacy and legacy["metadata"].get("labels", {}).get(_LEGACY_MANAGER[0]) \
                    == _LEGACY_MANAGER[1]:
                self._api.delete("v1", "Endpoints", service)
            self._api.delete(SLICE_API, "EndpointSlice", meta["name"])

    def repair(self, session: str, settings: ClusterSettings) -> None:
        """Re-point the session's proxy and gateway slices where their pods were replaced."""
        owned = {LABEL_MANAGED_BY: MANAGED_BY}
        slices = {s["metadata"]["name"]: s
                  for s in self._api.list_objects(SLICE_API, "EndpointSlice", owned)}  # fmt: skip
        pods = self._api.list_objects("v1", "Pod", owned)
        by_uid = {p["metadata"].get("uid", ""): p for p in pods}
        names = [gateway_name(session)]
        for pod in pods:
            found = pod["metadata"].get("labels") or {}
            agent = found.get(LABEL_ROLE) == ROLE_AGENT and found.get(LABEL_SESSION) == session
            if agent and found.get(LABEL_PROXY):
                names.append(proxy_object_name(found[LABEL_PROXY]))
        for name in dict.fromkeys(names):
            if slice_is_current(slices.get(name), by_uid):
                continue
            service = self._api.get("v1", "Service", name)
            # One made before paude wrote endpoints selects its pods itself (until a start).
            if service is not None and not service["spec"].get("selector"):
                self._reporter.info(f"Pointing Service {name} at its Deployment's pod")
                self.write(build_endpoints_step(service, settings))
