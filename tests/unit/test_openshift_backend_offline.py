"""OpenShiftBackend's executor logic against an in-memory API (real behaviour: tests/k8s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fakes import RecordingRunner
from paude.backends.base import NullReporter, SessionSpec, SessionStatus
from paude.backends.openshift.backend import OpenShiftBackend
from paude.config.models import BackendConfig, PaudeConfig, SyncConfig
from paude.errors import ConfigError, PaudeError, SessionNotFoundError

READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}


class FakeKube:
    """Objects by (kind, name); pods appear Ready when their StatefulSet is applied."""

    namespace = "team-a"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.applied: list[str] = []
        self.waited: list[str] = []

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = (obj["kind"], obj["metadata"]["name"])
        self.applied.append("/".join(key))
        stored = {**obj, "metadata": {**obj["metadata"], "creationTimestamp": "2026-01-01"}}
        self.objects[key] = stored
        if obj["kind"] == "StatefulSet":
            template = obj["spec"]["template"]["metadata"]
            pod = {"kind": "Pod", "metadata": {**template, "name": f"{key[1]}-0"}, "status": READY}
            self.objects[("Pod", f"{key[1]}-0")] = pod
        if obj["kind"] == "Deployment":  # its ReplicaSet makes a pod of its template
            stored["status"] = {"readyReplicas": 1}
            stored["metadata"]["uid"] = f"uid-{key[1]}"
            rs = {"kind": "ReplicaSet", "metadata": {"name": f"{key[1]}-rs", "uid": f"rs-{key[1]}",
                  "ownerReferences": [{"kind": "Deployment", "controller": True,
                                       "uid": f"uid-{key[1]}"}]}}  # fmt: skip
            self.objects[("ReplicaSet", rs["metadata"]["name"])] = rs
            template = obj["spec"]["template"]
            self.objects[("Pod", f"{key[1]}-rs-x")] = {
                "kind": "Pod", "spec": template["spec"],
                "status": {**READY, "podIP": "10.1.0.9"},
                "metadata": {**template["metadata"], "name": f"{key[1]}-rs-x",
                             "namespace": self.namespace, "uid": f"pod-{key[1]}",
                             "ownerReferences": [{"kind": "ReplicaSet", "controller": True,
                                                  "name": f"{key[1]}-rs", "uid": f"rs-{key[1]}"}]},
            }  # fmt: skip
        if obj["kind"] == "Service":  # the API server assigns the address
            stored["spec"] = {**obj["spec"], "clusterIP": "10.0.0.77"}
        return stored

    def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def list_objects(
        self, api_version: str, kind: str, selector: dict[str, str]
    ) -> list[dict[str, Any]]:
        return [
            o
            for (k, _), o in self.objects.items()
            if k == kind and selector.items() <= o["metadata"].get("labels", {}).items()
        ]

    def has_kind(self, api_version: str, kind: str | None = None) -> bool:
        return False

    def delete(self, api_version: str, kind: str, name: str) -> None:
        self.objects.pop((kind, name), None)
        if kind == "StatefulSet":
            self.objects.pop(("Pod", f"{name}-0"), None)
        if kind == "Deployment":  # the garbage collector: its ReplicaSet and pod
            self.objects.pop(("ReplicaSet", f"{name}-rs"), None)
            self.objects.pop(("Pod", f"{name}-rs-x"), None)

    def wait_pod_ready(
        self,
        name: str | None = None,
        *,
        labels: dict[str, str] | None = None,
        owner: tuple[str, str],
        timeout: float,
        until: Callable[[dict[str, Any]], bool] | None = None,
        mine: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        del mine  # its pods never fail
        self.waited.append(name or owner[1])
        if until is None:
            return {"status": READY}
        return next(pod for pod in self.list_objects("v1", "Pod", labels or {}) if until(pod))


def make(kube: FakeKube, runner: RecordingRunner | None = None) -> OpenShiftBackend:
    config = PaudeConfig(backend=BackendConfig(type="openshift", image="r.example/paude:1"),
                         sync=SyncConfig(enabled=False))  # the sync is proven on a real node
    return OpenShiftBackend(
        config,
        runner=runner or RecordingRunner(),
        reporter=NullReporter(),
        client=kube,  # type: ignore[arg-type]
        kube_cli="kubectl",
    )


def spec(name: str, domains: tuple[str, ...] = (".googleapis.com",), **kw: Any) -> SessionSpec:
    return SessionSpec(name, Path("/src") / name, domains, **kw)


def kinds(kube: FakeKube) -> set[str]:
    return {kind for kind, _ in kube.objects}


def test_start_applies_policies_first_and_returns_running_session() -> None:
    kube = FakeKube()
    session = make(kube).start_session(spec("demo", env={"ANTHROPIC_API_KEY": "k"}))
    assert session.status is SessionStatus.RUNNING and session.workspace == "/src/demo"
    # The workspace PVC first: it names the session's proxy for a stop after a kill.
    assert kube.applied[0] == "PersistentVolumeClaim/paude-demo-workspace"
    assert kube.applied[1] == "Secret/paude-demo-env"
    assert kube.applied[2].startswith("Secret/paude-proxy-") and kube.applied[2].endswith("-auth")
    assert (
        kube.applied[3].startswith("NetworkPolicy/")
        and kube.applied[-2] == "StatefulSet/paude-demo"
    )
    # Then the proxy Service's one endpoint: the pod its Deployment made.
    assert kube.applied[-1].startswith("EndpointSlice/paude-proxy-")
    (endpoint,) = kube.objects[("EndpointSlice", kube.applied[-1].split("/")[1])]["endpoints"]
    assert endpoint["addresses"] == ["10.1.0.9"] and endpoint["targetRef"]["uid"].startswith("pod-")


def test_the_proxy_credential_is_made_once_and_kept_for_the_agents_that_use_it() -> None:
    kube = FakeKube()
    backend = make(kube)
    backend.start_session(spec("a"))
    (auth,) = [k for k in kube.applied if k.endswith("-auth")]
    secret = kube.objects[("Secret", auth.split("/", 1)[1])]
    backend.start_session(spec("b"))  # same allowlist: same proxy, same credential
    assert [k for k in kube.applied if k.endswith("-auth")] == [auth]
    assert kube.objects[("Secret", auth.split("/", 1)[1])] is secret
    # The agent's proxy URL refers to the password; the password is not in the spec.
    sts = kube.objects[("StatefulSet", "paude-b")]
    env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"]["name"] == auth.split("/", 1)[1]
    proxy = next(v["value"] for v in env if v["name"] == "HTTPS_PROXY")
    assert proxy == "http://paude:$(PAUDE_PROXY_PASSWORD)@10.0.0.77:3128"


def test_stop_keeps_pvc_and_shared_proxy_until_last_user() -> None:
    kube = FakeKube()
    backend = make(kube)
    backend.start_session(spec("a"))
    backend.start_session(spec("b"))
    backend.stop_session("a")
    assert ("Deployment" in kinds(kube)) and (
        "PersistentVolumeClaim",
        "paude-a-workspace",
    ) in kube.objects
    backend.stop_session("b")
    assert kinds(kube) == {"PersistentVolumeClaim"}
    stopped = backend.list_sessions()
    assert {(s.name, s.status) for s in stopped} == {
        ("a", SessionStatus.STOPPED),
        ("b", SessionStatus.STOPPED),
    }
    assert stopped[0].workspace in ("/src/a", "/src/b")
    backend.stop_session("a")  # only its volume is left: nothing to do, no error
    assert backend.remove_workspace("a") == ["paude-a-workspace"]
    assert backend.find_session("a") is None
    with pytest.raises(SessionNotFoundError):
        backend.stop_session("a")


def test_stop_after_a_start_killed_before_its_statefulset_drops_the_proxy_it_made() -> None:
    kube = FakeKube()
    backend = make(kube)
    plan = backend.plan_session(spec("a"))
    for step in plan.steps:  # a start killed right before it applied the StatefulSet
        if step.obj["kind"] == "StatefulSet":  # type: ignore[union-attr]
            break
        kube.apply(step.obj)  # type: ignore[union-attr]
    assert "Deployment" in kinds(kube)
    backend.stop_session("a")
    assert kinds(kube) == {"PersistentVolumeClaim"}


def test_stop_of_unknown_session_raises() -> None:
    with pytest.raises(SessionNotFoundError, match="no session named 'ghost'"):
        make(FakeKube()).stop_session("ghost")


def test_attach_and_exec_argv() -> None:
    kube, runner = FakeKube(), RecordingRunner()
    backend = make(kube, runner)
    backend.start_session(spec("demo"))
    backend.attach_session("demo")
    assert backend.exec_in_session("demo", ["ls", "-l"]) == 0
    attach, run = runner.calls
    assert attach[-8:] == ("paude-demo-0", "-c", "agent", "--", "tmux", "attach", "-t", "paude")
    assert attach[0] == "kubectl" and "-it" in attach
    assert run[-3:] == ("--", "ls", "-l")
    assert "--namespace" in run and "team-a" in run


def test_attach_to_missing_session_raises() -> None:
    with pytest.raises(SessionNotFoundError, match="no session named 'x'"):
        make(FakeKube()).attach_session("x")


def test_sync_refused_when_switched_off() -> None:
    kube = FakeKube()
    backend = make(kube)
    backend.start_session(spec("demo"))
    with pytest.raises(ConfigError, match="sync is off"):
        backend.sync_workspace("demo")


def test_exec_in_a_pending_session_is_refused() -> None:
    kube = FakeKube()
    backend = make(kube)
    backend.start_session(spec("demo"))
    kube.objects[("Pod", "paude-demo-0")]["status"] = {"phase": "Pending"}
    with pytest.raises(PaudeError, match="session demo is pending: phase Pending"):
        backend.exec_in_session("demo", ["true"])
