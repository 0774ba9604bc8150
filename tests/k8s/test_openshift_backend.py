"""OpenShiftBackend on the real test cluster, as a user bound only to paude's Role.

The namespace enforces PodSecurity ``restricted``, so every admitted pod
proves the securityContext; RBAC is the documented Role, so every passing
call proves the Role is enough. kwok runs no containers: the image is never
pulled, and exec runs on the host in a per-pod directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from paude.backends.base import NullReporter, SessionSpec, SessionStatus
from paude.backends.openshift.backend import OpenShiftBackend
from paude.backends.openshift.client import KubeClient
from paude.backends.openshift.manifests import build_session_plan
from paude.backends.openshift.objects import cluster_settings, proxy_auth_name
from paude.config.models import Amounts, BackendConfig, PaudeConfig, Resources, SyncConfig
from paude.errors import ClusterError, OperationTimeoutError
from paude.plan import EndpointsManifest, Manifest
from paude.runner import SystemRunner

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.k8s

IMAGE = "localhost/paude-test:1"  # never pulled: kwok runs no containers
DOMAINS = (".googleapis.com", "api.anthropic.com")
SMALL = Resources(requests=Amounts(cpu="100m", memory="128Mi"), limits=Amounts(memory="256Mi"))
SESSION_KINDS = (
    "statefulsets,pods,secrets,configmaps,services,networkpolicies,deployments,endpointslices"
)


def make_config(namespace: str, **backend: Any) -> PaudeConfig:
    fields: dict[str, Any] = {"type": "openshift", "namespace": namespace, "image": IMAGE}
    fields["resources"] = SMALL
    fields.update(backend)
    # kwok runs exec'd commands on the host: no pod workspace to sync
    return PaudeConfig(backend=BackendConfig(**fields), sync=SyncConfig(enabled=False))


def make_backend(
    cluster: Cluster, config: PaudeConfig, *, timeout: float = 90
) -> tuple[OpenShiftBackend, NullReporter]:
    reporter = NullReporter()
    backend = OpenShiftBackend(
        config,
        runner=SystemRunner(),
        reporter=reporter,
        kube_cli=str(cluster.kubectl),
        ready_timeout=timeout,
    )
    return backend, reporter


@pytest.fixture
def as_limited(limited_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make lightkube and kubectl use the limited user's kubeconfig."""
    monkeypatch.setenv("KUBECONFIG", str(limited_kubeconfig))
    yield limited_kubeconfig


def spec(name: str, **kw: Any) -> SessionSpec:
    return SessionSpec(name=name, workspace=Path("/src") / name, allowed_domains=DOMAINS, **kw)


def labelled(
    cluster: Cluster, namespace: str, selector: str, kinds: str = SESSION_KINDS
) -> list[str]:
    out = cluster.run("get", kinds, "-n", namespace, "-l", selector, "-o", "json").stdout
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in json.loads(out)["items"])


def pod_uid(cluster: Cluster, namespace: str, name: str) -> str:
    pod = cluster.get("pod", f"paude-{name}-0", namespace)
    assert pod is not None
    return str(pod["metadata"]["uid"])


def test_start_converges_lists_and_stops(
    cluster: Cluster, namespace: str, as_limited: Path
) -> None:
    backend, reporter = make_backend(cluster, make_config(namespace))
    name = cluster.random_name("s")
    session = backend.start_session(spec(name))
    assert session.status is SessionStatus.RUNNING, session
    assert (session.name, session.workspace, session.network) == (
        name,
        f"/src/{name}",
        "restricted",
    )
    first_uid = pod_uid(cluster, namespace, name)
    stored = cluster.get("pod", f"paude-{name}-0", namespace)
    assert stored is not None  # admitted by PodSecurity "restricted" as written:
    volumes = {v["name"] for v in stored["spec"]["volumes"]}
    assert not any(v.startswith("kube-api-access") for v in volumes)  # no API token
    assert stored["spec"]["securityContext"]["runAsNonRoot"] is True
    proxy = labelled(cluster, namespace, "paude.io/role=proxy",
                     "deployments,services,configmaps,endpointslices")  # fmt: skip
    assert len(proxy) == 4
    # The proxy Service selects nothing; its one slice lists the Deployment's pod.
    (slice_name,) = [p.split("/", 1)[1] for p in proxy if p.startswith("EndpointSlice/")]
    endpoints = cluster.get("endpointslice", slice_name, namespace)
    assert endpoints is not None and len(endpoints["endpoints"]) == 1
    target = endpoints["endpoints"][0]["targetRef"]
    proxy_pod = cluster.get("pod", target["name"], namespace)
    assert proxy_pod is not None and proxy_pod["metadata"]["uid"] == target["uid"]
    assert endpoints["endpoints"][0]["addresses"] == [proxy_pod["status"]["podIP"]]
    assert proxy_pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert "selector" not in cluster.get("service", slice_name, namespace)["spec"]

    again = backend.start_session(spec(name))
    assert again.name == name and pod_uid(cluster, namespace, name) == first_uid
    assert [s.name for s in backend.list_sessions()] == [name]

    backend.stop_session(name)
    cluster.wait_for(
        lambda: not labelled(cluster, namespace, f"paude.io/session={name}") or None,
        timeout=60,
        what="no session object left",
    )
    assert labelled(cluster, namespace, "paude.io/role=proxy",
                    "deployments,services,endpointslices") == []  # fmt: skip
    assert labelled(cluster, namespace, "paude.io/role=policy", "networkpolicies") == []
    claims = labelled(cluster, namespace, f"paude.io/session={name}", "persistentvolumeclaims")
    assert claims == [f"PersistentVolumeClaim/paude-{name}-workspace"]
    assert any("Kept the workspace volume" in m for m in reporter.messages)
    stopped = backend.find_session(name)
    assert stopped is not None and stopped.status is SessionStatus.STOPPED
    assert backend.remove_workspace(name) == [f"paude-{name}-workspace"]
    cluster.wait_for(
        lambda: backend.find_session(name) is None, timeout=60, what="workspace PVC gone"
    )


def test_interrupted_create_converges(cluster: Cluster, namespace: str, as_limited: Path) -> None:
    config = make_config(namespace)
    name = cluster.random_name("i")
    plan = build_session_plan(spec(name), cluster_settings(config.backend, namespace))
    client = KubeClient(context=None, namespace=namespace)
    for step in plan.steps[:3]:  # a start killed after its first objects
        assert isinstance(step, Manifest)
        client.apply(step.obj)
    backend, _ = make_backend(cluster, config)
    session = backend.start_session(spec(name))
    assert session.status is SessionStatus.RUNNING
    manifests = [s for s in plan.steps if isinstance(s, Manifest | EndpointsManifest)]
    # Beside the plan's objects: the proxy's credential Secret, which the start
    # makes once (its password is random, so no plan can hold it) and keeps.
    auth = f"Secret/{proxy_auth_name(spec(name).allowed_domains)}"
    expected = sorted([f"{s.obj['kind']}/{s.obj['metadata']['name']}" for s in manifests] + [auth])
    everything = f"{SESSION_KINDS},persistentvolumeclaims"
    found = labelled(cluster, namespace, "app.kubernetes.io/managed-by=paude", everything)
    assert [f for f in found if not f.startswith("Pod/")] == expected
    assert backend.list_sessions()[0].name == name


def test_exec_passes_output_and_exit_code(
    cluster: Cluster, namespace: str, as_limited: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    backend, _ = make_backend(cluster, make_config(namespace))
    name = cluster.random_name("e")
    backend.start_session(spec(name, allow_network=True))
    workdir = cluster.exec_workdir(namespace, f"paude-{name}-0")
    capfd.readouterr()
    code = backend.exec_in_session(name, ["sh", "-c", "echo out:$(pwd); echo err >&2; exit 3"])
    captured = capfd.readouterr()
    assert code == 3
    assert captured.out == f"out:{workdir}\n"
    assert "err" in captured.err


def test_forbidden_names_verb_and_resource(
    cluster: Cluster, namespace: str, as_limited: Path
) -> None:
    backend, _ = make_backend(cluster, make_config("kube-system"))
    with pytest.raises(
        ClusterError, match=r"forbidden: cannot list statefulsets.apps in namespace kube-system"
    ) as err:
        backend.list_sessions()
    assert "paude setup --print-rbac --namespace kube-system" in (err.value.hint or "")


def test_missing_namespace_is_named(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    missing = cluster.random_name("nope")
    backend, _ = make_backend(cluster, make_config(missing))
    with pytest.raises(ClusterError, match=f"the namespace {missing} does not exist"):
        backend.start_session(spec("x"))


def test_quota_exceeded_is_reported(cluster: Cluster, namespace: str, as_limited: Path) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-claims", "namespace": namespace},
            "spec": {"hard": {"persistentvolumeclaims": "0"}},
        }
    )
    cluster.wait_for(
        lambda: (cluster.get("resourcequota", "no-claims", namespace) or {}).get("status"),
        timeout=30,
        what="quota status",
    )
    backend, _ = make_backend(cluster, make_config(namespace))
    with pytest.raises(ClusterError, match=r"out of quota: .*exceeded quota"):
        backend.start_session(spec(cluster.random_name("q"), allow_network=True))


def test_unschedulable_pod_names_the_schedulers_reason(
    cluster: Cluster, namespace: str, as_limited: Path
) -> None:
    huge = Resources(requests=Amounts(cpu="5000", memory="1Gi"), limits=Amounts(memory="1Gi"))
    backend, _ = make_backend(cluster, make_config(namespace, resources=huge), timeout=8)
    with pytest.raises(OperationTimeoutError, match=r"not ready: .*Insufficient cpu"):
        backend.start_session(spec(cluster.random_name("p"), allow_network=True))
