"""np-guard's netpol-analyzer on the objects a session start really applied.

The test cluster stores NetworkPolicies but enforces none (kwok fakes the
network), so an independent analyser computes what they allow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from paude.backends.base import NullReporter, SessionSpec
from paude.backends.openshift.backend import OpenShiftBackend
from paude.backends.openshift.policies import build_admin_agent_policy, build_admin_proxy_policy
from paude.config.models import Amounts, BackendConfig, PaudeConfig, Resources, SyncConfig
from paude.runner import SystemRunner

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.k8s

DEFAULT_ANALYZER = "/opt/npguard/bin/netpolicy"
SMALL = Resources(requests=Amounts(cpu="100m", memory="64Mi"), limits=Amounts(memory="128Mi"))


def analyzer() -> str:
    found = os.environ.get("PAUDE_NETPOL_ANALYZER") or shutil.which("netpolicy") or DEFAULT_ANALYZER
    if not os.access(found, os.X_OK):
        pytest.fail("np-guard netpol-analyzer is not built: run scripts/setup", pytrace=False)
    return found


def stand_in_pod(name: str, ns: str, labels: dict[str, str], ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"podIP": ip, "hostIP": "192.0.2.1"},
    }


def applied(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """Return the namespace, its pods and its NetworkPolicies as stored by the API server."""
    out = cluster.run("get", "pods,networkpolicies", "-n", namespace, "-o", "json").stdout
    ns = cluster.get("namespace", namespace, namespace)
    assert ns is not None
    return [ns, *json.loads(out)["items"]]


def connections(tmp: Path, objs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    (tmp / "objs.yaml").write_text(yaml.safe_dump_all(objs))
    argv = [analyzer(), "list", "--dirpath", str(tmp), "-o", "json", "-q"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    return {(c["src"].split("[")[0], c["dst"].split("[")[0], c["conn"]) for c in json.loads(out)}


def start(cluster: Cluster, namespace: str) -> str:
    """Start a restricted session as the current KUBECONFIG's user; return its name."""
    config = PaudeConfig(
        backend=BackendConfig(type="openshift", namespace=namespace, image="x:1", resources=SMALL),
        sync=SyncConfig(enabled=False),  # kwok execs on the host: no pod workspace
    )
    backend = OpenShiftBackend(config, runner=SystemRunner(), reporter=NullReporter())
    name = cluster.random_name("n")
    backend.start_session(SessionSpec(name, Path("/w"), (".googleapis.com",)))
    return name


def stand_ins(namespace: str) -> list[dict[str, Any]]:
    kube_system = {"kubernetes.io/metadata.name": "kube-system"}
    stand_ins = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "kube-system", "labels": kube_system}},
        stand_in_pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, "10.250.0.10"),
        stand_in_pod("other", namespace, {"app": "other"}, "10.250.0.11"),
    ]  # fmt: skip
    return stand_ins


def test_applied_policies_isolate_the_agent(
    cluster: Cluster,
    namespace: str,
    limited_kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(limited_kubeconfig))
    name = start(cluster, namespace)
    conns = connections(tmp_path, applied(cluster, namespace) + stand_ins(namespace))
    agent = f"{namespace}/paude-{name}"  # the analyser names pods by their owner
    from_agent = {(dst, conn) for src, dst, conn in conns if src == agent}
    proxies = {dst for dst, _ in from_agent if "paude-proxy-" in dst}
    assert len(proxies) == 1, "\n".join(map(str, sorted(conns)))
    assert from_agent == {(proxies.pop(), "TCP 3128")}  # not even DNS
    assert {src for src, dst, _ in conns if dst == agent} == set()
    to_proxy = {src for src, dst, _ in conns if "paude-proxy-" in dst}
    assert to_proxy == {agent}


def test_allow_all_ingress_opens_the_agent_unless_admin_policy(
    cluster: Cluster,
    namespace: str,
    limited_kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(limited_kubeconfig))
    name = start(cluster, namespace)
    cluster.apply(  # what a namespace admin (or an OpenShift project template) adds
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-from-all-namespaces", "namespace": namespace},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {}}]}],
            },
        }
    )
    agent = f"{namespace}/paude-{name}"
    objs = applied(cluster, namespace) + stand_ins(namespace)
    opened = {src for src, dst, _ in connections(tmp_path, objs) if dst == agent}
    assert f"{namespace}/other" in opened  # NetworkPolicies union: documented limitation
    admin = [build_admin_agent_policy(), build_admin_proxy_policy()]
    closed = {src for src, dst, _ in connections(tmp_path, objs + admin) if dst == agent}
    assert {src for src in closed if "/" in src} == set()  # no pod of the cluster
