"""The test cluster's real node: containers run, images are pulled, policies hold.

Self-tests of ``up.sh --real-node`` and the ``real_*`` fixtures: what the
OpenShift backend's end-to-end tests rely on. Every probe goes to pods this
test made or to the node's own loopback/bridge addresses.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cluster, RealImages, RealNode

pytestmark = pytest.mark.k8s

# A tiny HTTP server and TCP/UDP probes in node (the agent image has node).
SERVER = (
    "require('http').createServer((q, r) => r.end('ok-from-server'))"
    ".listen(8080, () => console.log('listening'))"
)
TCP_PROBE = (
    "const s = require('net').connect({host: process.argv[1], port: +process.argv[2]});"
    "s.setTimeout(2000, () => { console.log('timeout'); process.exit(2); });"
    "s.on('connect', () => { console.log('connected'); process.exit(0); });"
    "s.on('error', e => { console.log(e.code); process.exit(1); });"
)
BLOCKED = {"ECONNREFUSED", "timeout", "EHOSTUNREACH"}
DNS_PROBE = (
    "require('dns').lookup(process.argv[1], (e, a) => {"
    " console.log(e ? e.code : a); process.exit(e ? 1 : 0); });"
)


def pod(name: str, image: str, command: list[str], labels: dict[str, str]) -> dict[str, Any]:
    """A restricted pod (no nodeName: the namespace puts it on the real node)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "command": command,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 1000,
                    },
                }
            ],
        },
    }


def start_pods(
    cluster: Cluster, namespace: str, kubeconfig: Path, *pods: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    for p in pods:
        p["metadata"]["namespace"] = namespace
    cluster.apply(*pods, kubeconfig=kubeconfig)
    return {
        p["metadata"]["name"]: wait_ready(cluster, namespace, p["metadata"]["name"]) for p in pods
    }


def wait_ready(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        got = cluster.get("pod", name, namespace)
        statuses = (got or {}).get("status", {}).get("containerStatuses") or []
        return got if statuses and all(s.get("ready") for s in statuses) else None

    return cluster.wait_for(probe, timeout=120, what=f"pod {namespace}/{name} ready")


def node_js(
    cluster: Cluster, namespace: str, pod_name: str, script: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return cluster.run(
        "exec", "-n", namespace, pod_name, "--", "node", "-e", script, *args, check=False
    )


def tcp(cluster: Cluster, namespace: str, pod_name: str, host: str, port: int) -> str:
    return node_js(cluster, namespace, pod_name, TCP_PROBE, host, str(port)).stdout.strip()


@pytest.fixture
def pair(
    cluster: Cluster,
    real_namespace: str,
    real_limited_kubeconfig: Path,
    real_images: RealImages,
) -> dict[str, dict[str, Any]]:
    """A server pod (HTTP on 8080) and a client pod, both on the real node."""
    image = real_images.agent
    return start_pods(
        cluster,
        real_namespace,
        real_limited_kubeconfig,
        pod("server", image, ["node", "-e", SERVER], {"app": "server"}),
        pod("client", image, ["sleep", "infinity"], {"app": "client"}),
    )


def test_pods_run_on_the_real_node_and_kwok_pods_stay_off_it(
    cluster: Cluster, real_node: RealNode, namespace: str, pair: dict[str, dict[str, Any]]
) -> None:
    for p in pair.values():
        assert p["spec"]["nodeName"] == real_node.name
        assert p["status"]["podIP"].startswith(real_node.pod_cidr.rsplit(".", 1)[0] + ".")
    # A real process, as the pod's user, in the pod's own PID namespace.
    ns = pair["client"]["metadata"]["namespace"]
    out = cluster.run("exec", "-n", ns, "client", "--", "sh", "-c", "id -u; cat /proc/1/cmdline")
    assert out.stdout.split("\n", 1) == ["1000", "sleep\x00infinity\x00"]
    # A pod of an ordinary namespace goes to kwok, never to the real node.
    cluster.apply(
        {**pod("plain", "localhost/never-pulled:1", ["true"], {}), "metadata": {
            "name": "plain", "namespace": namespace}}
    )
    placed = cluster.wait_pod_running(namespace, "plain")
    assert placed["spec"]["nodeName"] != real_node.name


def test_images_come_from_the_registry_which_needs_the_password(
    real_node: RealNode, real_images: RealImages, pair: dict[str, dict[str, Any]]
) -> None:
    status = pair["server"]["status"]["containerStatuses"][0]
    assert status["imageID"].endswith(real_images.agent.split("@", 1)[1])
    ctx = ssl.create_default_context(cafile=str(real_node.registry_cert_dir / real_node.registry
                                                / "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"https://{real_node.registry}/v2/_catalog", context=ctx, timeout=10)
    assert denied.value.code == 401


def test_pods_reach_each_other_and_services_until_a_policy_denies(
    cluster: Cluster, real_limited_kubeconfig: Path, pair: dict[str, dict[str, Any]]
) -> None:
    ns = pair["client"]["metadata"]["namespace"]
    server_ip = pair["server"]["status"]["podIP"]
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "server", "namespace": ns},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        kubeconfig=real_limited_kubeconfig,
    )
    svc = cluster.get("service", "server", ns)
    assert svc is not None
    cluster_ip = svc["spec"]["clusterIP"]
    assert tcp(cluster, ns, "client", server_ip, 8080) == "connected"
    cluster.wait_for(
        lambda: tcp(cluster, ns, "client", cluster_ip, 80) == "connected",
        timeout=30, what="the Service's ClusterIP (kube-proxy)",
    )
    # The cluster DNS answers for the Service, and for no outside name.
    found = node_js(cluster, ns, "client", DNS_PROBE, f"server.{ns}.svc.cluster.local")
    assert found.stdout.strip() == cluster_ip
    outside = node_js(cluster, ns, "client", DNS_PROBE, "example.com")
    assert outside.returncode == 1
    assert outside.stdout.strip() in {"ENOTFOUND", "EAI_AGAIN"}
    cluster.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "client-deny-egress", "namespace": ns},
            "spec": {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]},
        },
        kubeconfig=real_limited_kubeconfig,
    )
    # kube-router rejects (ECONNREFUSED) where other providers drop (timeout).
    cluster.wait_for(
        lambda: tcp(cluster, ns, "client", server_ip, 8080) in BLOCKED,
        timeout=30, what="kube-router to enforce the deny-all egress policy",
    )
    assert tcp(cluster, ns, "client", cluster_ip, 80) in BLOCKED


def test_kubelet_refuses_anonymous_requests_and_serves_the_api_server(
    cluster: Cluster, real_node: RealNode, pair: dict[str, dict[str, Any]]
) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the kubelet's self-signed serving certificate
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"https://{real_node.node_ip}:10250/pods", context=ctx, timeout=10)
    assert denied.value.code == 401
    # exec, logs: the API server's client certificate, authorized by webhook.
    ns = pair["server"]["metadata"]["namespace"]
    assert cluster.run("logs", "-n", ns, "server").stdout.strip() == "listening"
    kubelet = Path(cluster.kubeconfig).parent / "node" / "kubelet.kubeconfig"
    whoami = cluster.run("auth", "whoami", "-o", "json", kubeconfig=kubelet)
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:node:{real_node.name}"
    assert "system:nodes" in user["groups"]
