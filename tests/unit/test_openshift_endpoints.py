"""The proxy's and gateway's endpoints: selectorless Services, slices paude writes, its pod only."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from paude.auth import build_agent_model_env, find_model_auth
from paude.backends.base import SessionSpec
from paude.backends.openshift.endpoints import (
    LABEL_SERVICE_NAME,
    LABEL_SLICE_MANAGER,
    POD_ADDRESS_PENDING,
    SLICE_MANAGER,
    build_endpoint_slice,
    is_deployment_pod,
    made_by,
    slice_is_current,
    with_pods,
)
from paude.backends.openshift.manifests import build_session_objects, build_session_plan
from paude.backends.openshift.objects import ClusterSettings
from paude.backends.openshift.rbac import build_role
from paude.plan import EndpointsManifest, Manifest, render_plan

SETTINGS = ClusterSettings(namespace="team-a", image="registry.example/paude/paude:1")
HOST_ENV = {"ANTHROPIC_API_KEY": "sk-ant-unit"}


def spec(**kw: Any) -> SessionSpec:
    auth = find_model_auth(HOST_ENV, None, "-")
    base: dict[str, Any] = {"name": "demo", "workspace": Path("/src/demo"),
                            "allowed_domains": (".example.com",), "model_auth": auth,
                            "model_env": build_agent_model_env(auth, HOST_ENV)}  # fmt: skip
    return SessionSpec(**(base | kw))


def services(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}


def deployment_and_pod() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The proxy Deployment (as served), its ReplicaSet and the ready pod it made."""
    (dep,) = [o for o in build_session_objects(spec(), SETTINGS)
              if o["kind"] == "Deployment" and "proxy" in o["metadata"]["name"]]  # fmt: skip
    dep = copy.deepcopy(dep)
    dep["metadata"]["uid"] = "dep-uid"
    rs = {"metadata": {"name": "rs", "uid": "rs-uid", "ownerReferences": [
        {"kind": "Deployment", "name": dep["metadata"]["name"], "uid": "dep-uid",
         "controller": True}]}}  # fmt: skip
    template = copy.deepcopy(dep["spec"]["template"])
    pod = {
        "metadata": {**template["metadata"], "name": "proxy-abc", "namespace": "team-a",
                     "uid": "pod-uid", "ownerReferences": [{
                         "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": True}]},
        "spec": {**template["spec"], "nodeName": "node-1"},
        "status": {"podIP": "10.244.0.7", "conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip
    return dep, rs, pod


def test_the_proxy_and_gateway_services_select_no_pods() -> None:
    found = services(build_session_objects(spec(), SETTINGS))
    assert len(found) == 2 and all("selector" not in s["spec"] for s in found.values()), found
    # An export has no paude to write endpoints: there they select by label.
    exported = services(build_session_objects(spec(), SETTINGS, by_labels=True))
    assert all(s["spec"]["selector"] for s in exported.values())


def test_the_plan_writes_each_services_slice_after_the_agent_with_the_address_pending() -> None:
    plan = build_session_plan(spec(), SETTINGS)
    kinds = [type(s) for s in plan.steps]
    last_manifest = max(i for i, k in enumerate(kinds) if k is Manifest)
    slices = [s for s in plan.steps if isinstance(s, EndpointsManifest)]
    assert kinds.index(EndpointsManifest) > last_manifest  # after the StatefulSet
    names = services(build_session_objects(spec(), SETTINGS))
    assert sorted(s.deployment for s in slices) == sorted(names)
    for step in slices:
        meta = step.obj["metadata"]
        assert meta["labels"][LABEL_SERVICE_NAME] == meta["name"] == step.deployment
        assert meta["labels"][LABEL_SLICE_MANAGER] == SLICE_MANAGER
        assert meta["labels"] | names[meta["name"]]["metadata"]["labels"] == meta["labels"]
        assert step.obj["endpoints"][0]["addresses"] == [POD_ADDRESS_PENDING]
    # --dry-run shows the steps with what fills in the address.
    text = render_plan(plan)
    assert text.count("kind: EndpointSlice") == 2 and f"{POD_ADDRESS_PENDING} here" in text
    # An --allow-network session without a model credential has neither.
    bare = build_session_plan(spec(allow_network=True, model_auth=None, model_env={}), SETTINGS)
    assert not [s for s in bare.steps if isinstance(s, EndpointsManifest)]


def test_the_slice_lists_exactly_the_pod_by_address_uid_and_the_services_port_name() -> None:
    _, _, pod = deployment_and_pod()
    service = services(build_session_objects(spec(), SETTINGS))["paude-proxy-" + pod[
        "metadata"]["labels"]["paude.io/proxy"]]  # fmt: skip
    built = build_endpoint_slice(service, SETTINGS, [pod])
    assert built["addressType"] == "IPv4" and built["ports"] == [
        {"name": "proxy", "port": 3128, "protocol": "TCP"}]
    assert built["endpoints"] == [{
        "addresses": ["10.244.0.7"], "conditions": {"ready": True}, "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "name": "proxy-abc", "namespace": "team-a", "uid": "pod-uid"},
    }]  # fmt: skip
    step = next(s for s in build_session_plan(spec(), SETTINGS).steps
                if isinstance(s, EndpointsManifest) and s.deployment == service["metadata"]["name"])
    assert with_pods(step, [pod]) == built
    v6 = copy.deepcopy(pod)
    v6["status"]["podIP"] = "fd00::7"
    assert build_endpoint_slice(service, SETTINGS, [v6])["addressType"] == "IPv6"


def test_only_a_ready_pod_of_the_deployments_own_replicaset_and_template_counts() -> None:
    dep, rs, pod = deployment_and_pod()
    assert is_deployment_pod(pod, dep, rs)
    # A copy of its labels, no owner (or its own ReplicaSet): not the Deployment's.
    assert not is_deployment_pod(pod, dep, None)
    stranger = copy.deepcopy(rs)
    stranger["metadata"]["ownerReferences"][0]["uid"] = "another-deployment"
    assert not is_deployment_pod(pod, dep, stranger)
    # Adopted by the ReplicaSet (an orphan matching its selector) but running
    # its own image, command, variables or mounts: not the Deployment's pod.
    for change in (
        lambda c: c.update(image="evil:1"), lambda c: c.update(command=["nc", "-l", "3128"]),
        lambda c: c.update(env=[{"name": "X", "value": "1"}]),
        lambda c: c["volumeMounts"].append({"name": "extra", "mountPath": "/etc/squid"}),
    ):  # fmt: skip
        impostor = copy.deepcopy(pod)
        change(impostor["spec"]["containers"][0])
        assert not is_deployment_pod(impostor, dep, rs), impostor["spec"]["containers"][0]
    swapped = copy.deepcopy(pod)
    swapped["spec"]["volumes"][0] = {"name": "conf", "configMap": {"name": "mine"}}
    extra_init = copy.deepcopy(pod)
    extra_init["spec"]["initContainers"] = [{"name": "x", "image": "evil:1"}]
    not_ready = copy.deepcopy(pod)
    not_ready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    going = copy.deepcopy(pod)
    going["metadata"]["deletionTimestamp"] = "2026-12-03T19:00:00Z"
    for other in (swapped, extra_init, not_ready, going):
        assert not is_deployment_pod(other, dep, rs)
    # Admission may add an unmounted volume and change security contexts.
    admitted = copy.deepcopy(pod)
    admitted["spec"]["volumes"].append({"name": "added", "emptyDir": {}})
    admitted["spec"]["containers"][0]["securityContext"] = {"runAsUser": 1000650000}
    assert is_deployment_pod(admitted, dep, rs)


def test_only_the_deployments_own_pods_failures_count_ready_or_not() -> None:
    dep, rs, pod = deployment_and_pod()
    pulling = copy.deepcopy(pod)
    pulling["status"] = {"containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull"}}}]}
    assert made_by(pulling, dep, rs) and not is_deployment_pod(pulling, dep, rs)
    copied = copy.deepcopy(pulling)  # the same labels, no owner: its failure is its own
    del copied["metadata"]["ownerReferences"]
    stranger = copy.deepcopy(rs)
    stranger["metadata"]["ownerReferences"][0]["uid"] = "another-deployment"
    assert not made_by(copied, dep, None) and not made_by(pulling, dep, stranger)


def test_a_slice_is_current_while_its_pod_lives_ready_at_the_same_address() -> None:
    dep, _, pod = deployment_and_pod()
    service = {"metadata": {"name": "s", "labels": {}}, "spec": {"ports": [
        {"name": "proxy", "port": 3128, "targetPort": 3128}]}}  # fmt: skip
    written = build_endpoint_slice(service, SETTINGS, [pod])
    assert slice_is_current(written, {"pod-uid": pod})
    assert not slice_is_current(None, {"pod-uid": pod})
    assert not slice_is_current(written, {})  # the pod was replaced
    moved = copy.deepcopy(pod)
    moved["status"]["podIP"] = "10.244.0.8"
    assert not slice_is_current(written, {"pod-uid": moved})
    pending = build_endpoint_slice(service, SETTINGS)
    assert not slice_is_current(pending, {"pod-uid": pod})


def test_the_role_may_write_endpointslices_and_read_replicasets_only() -> None:
    rules = build_role("team-a")["rules"]
    slices = next(r for r in rules if r["apiGroups"] == ["discovery.k8s.io"])
    assert slices["resources"] == ["endpointslices"]
    assert {"create", "patch", "delete", "list"} <= set(slices["verbs"])
    (rs,) = [r for r in rules if "replicasets" in r["resources"]]
    assert rs["verbs"] == ["get"]
