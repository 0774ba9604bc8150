"""What paude's NetworkPolicies allow, as an independent analyser computes it.

np-guard's netpol-analyzer (built from Go modules: see docs/openshift.md)
reads the builders' output plus stand-in pods and lists every allowed
connection. tests/k8s/test_openshift_netpol.py runs it on applied objects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from paude.backends.base import SessionSpec
from paude.backends.openshift.manifests import build_session_objects
from paude.backends.openshift.objects import ClusterSettings
from paude.backends.openshift.policies import build_admin_agent_policy, build_admin_proxy_policy

NS = "team-a"
DEFAULT_ANALYZER = "/opt/npguard/bin/netpolicy"


def analyzer() -> str:
    """Return the netpol-analyzer binary, or skip when it is not built."""
    found = os.environ.get("PAUDE_NETPOL_ANALYZER") or shutil.which("netpolicy") or DEFAULT_ANALYZER
    if not os.access(found, os.X_OK):
        pytest.fail("np-guard netpol-analyzer is not built: run scripts/setup", pytrace=False)
    return found


def namespace(name: str) -> dict[str, Any]:
    labels = {"kubernetes.io/metadata.name": name}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(name: str, ns: str, labels: dict[str, str], ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"podIP": ip, "hostIP": "192.0.2.1"},
    }


STAND_INS = [
    namespace(NS),
    namespace("kube-system"),
    namespace("elsewhere"),
    pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, "10.0.0.10"),
    pod("other", NS, {"app": "other"}, "10.0.0.11"),
    pod("far", "elsewhere", {"app": "far"}, "10.0.0.12"),
]
ALLOW_ALL_INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-from-all-namespaces", "namespace": NS},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {}}]}],
    },
}


def connections(tmp: Path, objs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Return ``{(src, dst): conn}`` for every allowed connection among ``objs``."""
    (tmp / "objs.yaml").write_text(yaml.safe_dump_all(objs))
    argv = [analyzer(), "list", "--dirpath", str(tmp), "-o", "json", "-q"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    return {(c["src"].split("[")[0], c["dst"].split("[")[0]): c["conn"] for c in json.loads(out)}


def session_objects() -> list[dict[str, Any]]:
    spec = SessionSpec("demo", Path("/w"), (".googleapis.com",))
    objs = build_session_objects(spec, ClusterSettings(namespace=NS, image="i:1"))
    return [o for o in objs if o["kind"] in ("NetworkPolicy", "StatefulSet", "Deployment")]


def peers(conns: dict[tuple[str, str], str], *, src: str = "", dst: str = "") -> dict[str, str]:
    if src:
        return {d: c for (s, d), c in conns.items() if s == src}
    return {s: c for (s, d), c in conns.items() if d == dst}


AGENT = f"{NS}/paude-demo"


def proxy_of(conns: dict[tuple[str, str], str]) -> str:
    return next(d for (_, d) in conns if "paude-proxy-" in d)


def test_agent_reaches_only_its_proxy_not_even_dns(tmp_path: Path) -> None:
    conns = connections(tmp_path, session_objects() + STAND_INS)
    out = peers(conns, src=AGENT)
    assert out == {proxy_of(conns): "TCP 3128"}


def test_nothing_reaches_the_agent_and_only_the_agent_reaches_the_proxy(tmp_path: Path) -> None:
    conns = connections(tmp_path, session_objects() + STAND_INS)
    assert peers(conns, dst=AGENT) == {}
    assert peers(conns, dst=proxy_of(conns)) == {AGENT: "TCP 3128"}


def test_allow_all_ingress_policy_opens_the_agent_without_admin_policy(tmp_path: Path) -> None:
    """NetworkPolicies union: documented limitation, fixed by the AdminNetworkPolicy."""
    conns = connections(tmp_path, [*session_objects(), *STAND_INS, ALLOW_ALL_INGRESS])
    assert f"{NS}/other" in peers(conns, dst=AGENT)


def test_admin_policy_keeps_the_agent_closed_despite_allow_all_ingress(tmp_path: Path) -> None:
    admin = [build_admin_agent_policy(), build_admin_proxy_policy()]
    conns = connections(tmp_path, [*session_objects(), *STAND_INS, ALLOW_ALL_INGRESS, *admin])
    in_cluster = {s for s in peers(conns, dst=AGENT) if "/" in s}
    assert in_cluster == set()
    assert set(peers(conns, dst=proxy_of(conns))) == {AGENT}
    assert peers(conns, src=AGENT) == {proxy_of(conns): "TCP 3128"}


def gateway_session_objects(name: str) -> list[dict[str, Any]]:
    from paude.auth import build_agent_model_env, find_model_auth

    env = {"ANTHROPIC_API_KEY": f"sk-{name}"}
    auth = find_model_auth(env, None, "-")
    spec = SessionSpec(name, Path(f"/w/{name}"), (".googleapis.com",), model_auth=auth,
                       model_env=build_agent_model_env(auth, env))
    objs = build_session_objects(spec, ClusterSettings(namespace=NS, image="i:1"))
    return [o for o in objs if o["kind"] in ("NetworkPolicy", "StatefulSet", "Deployment")]


def test_only_its_own_sessions_agent_reaches_a_gateway(tmp_path: Path) -> None:
    # Two sessions with gateways sharing one proxy (the same allowlist).
    objs = gateway_session_objects("demo") + gateway_session_objects("bob")
    unique = list({(o["kind"], o["metadata"]["name"]): o for o in objs}.values())
    conns = connections(tmp_path, unique + STAND_INS)
    gateway, bob = f"{NS}/paude-demo-gateway", f"{NS}/paude-bob"
    assert peers(conns, dst=gateway) == {AGENT: "TCP 8080"}  # not bob's agent, not others
    assert peers(conns, src=AGENT) == {proxy_of(conns): "TCP 3128", gateway: "TCP 8080"}
    assert peers(conns, src=bob) == {proxy_of(conns): "TCP 3128",
                                     f"{NS}/paude-bob-gateway": "TCP 8080"}
