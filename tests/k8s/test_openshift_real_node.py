"""An OpenShift-backend session for real: the agent image runs on the real node.

As paude's limited user in a restricted namespace whose pods run on the real
node (the ``real_*`` fixtures): ``paude --backend openshift --detach`` starts
the real agent and proxy images pulled from the registry, ``paude exec``
answers from inside the pod, the image's entrypoint runs the tmux session,
the egress probes (the families of tests/podman/test_egress.py) go from
inside the agent pod to this test's own pods, and ``paude stop`` leaves
nothing labelled; with the policies deleted (a mutation check) the direct
probe gets through. Every probe targets a pod this test made, the node's own
addresses or the API server on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Cluster, RealImages, RealNode

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300
SERVER = "require('http').createServer((q, r) => r.end('ok-from-server')).listen(8080)"
SESSION_KINDS = (
    "statefulsets,pods,secrets,configmaps,services,networkpolicies,deployments,endpointslices"
)


def run_paude(
    workspace: Path, home: Path, kubeconfig: Path, kubectl: Path, *args: str,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{kubectl.parent}:{os.environ['PATH']}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": str(REPO / "src"),
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
        **(env_extra or {}),
    }
    return subprocess.run([sys.executable, "-m", "paude", *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


def server_pod(image: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "server", "namespace": namespace, "labels": {"app": "server"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": image, "command": ["node", "-e", SERVER],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}, "runAsUser": 1000},
            }],
        },
    }  # fmt: skip


def test_real_session_runs_the_agent_image_and_its_egress_is_only_the_proxy(
    cluster: Cluster,
    real_node: RealNode,
    real_limited_kubeconfig: Path,
    real_images: RealImages,
    tmp_path: Path,
) -> None:
    kc = real_limited_kubeconfig  # its context's namespace is real_namespace
    ns = yaml.safe_load(kc.read_text())["contexts"][0]["context"]["namespace"]
    # The test's own server pod and Service: the allowlisted destination.
    cluster.apply(server_pod(real_images.agent, ns), kubeconfig=kc)
    cluster.apply({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "server", "namespace": ns},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }, kubeconfig=kc)  # fmt: skip
    server = cluster.wait_pod_running(ns, "server", timeout=120)
    allowed = f"server.{ns}.svc.cluster.local"

    home, workspace, bindir = tmp_path / "home", tmp_path / "workspace", tmp_path / "bin"
    for d in (home / ".config" / "paude", workspace, bindir):
        d.mkdir(parents=True)
    (bindir / "kubectl").symlink_to(cluster.kubectl)
    backend = {"type": "openshift", "namespace": ns, "image": real_images.agent_tag,
               "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                             "limits": {"memory": "1Gi"}}}
    # squid refuses private ranges unless a range is listed: the pod network.
    config = {"backend": backend,
              "allowed_domains": [allowed, real_node.pod_cidr, real_node.service_cidr]}
    (home / ".config" / "paude" / "paude.json").write_text(json.dumps(config))

    def paude(*args: str) -> subprocess.CompletedProcess[str]:
        return run_paude(workspace, home, kc, bindir / "kubectl", *args)

    started = paude("--backend", "openshift", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    sessions = json.loads(paude("sessions", "--json").stdout)
    (session,) = [s for s in sessions if s["workspace"] == str(workspace)]
    pod_name = f"paude-{session['name']}-0"
    pod = cluster.get("pod", pod_name, ns)
    assert pod is not None and pod["spec"]["nodeName"] == real_node.name
    status = pod["status"]["containerStatuses"][0]
    assert status["imageID"].endswith(real_images.agent.split("@", 1)[1])

    # paude exec answers from inside the pod: the real Claude Code binary.
    version = paude("exec", "--", "claude", "--version")
    assert version.returncode == 0 and "Claude Code" in version.stdout, version

    def in_agent(script: str) -> subprocess.CompletedProcess[str]:
        return cluster.run("exec", "-n", ns, pod_name, "-c", "agent", "--", "bash", "-c",
                           script, kubeconfig=kc, check=False)

    # The tmux session "paude" is the entrypoint's: its server runs in the pod.
    tmux = in_agent("tmux has-session -t paude && tmux display-message -p '#{pid}'")
    assert tmux.returncode == 0 and tmux.stdout.strip().isdigit(), tmux
    # Allowlisted name through the proxy answers; another name gets squid's 403.
    ok = in_agent(f"curl -s --max-time 20 http://{allowed}/")
    assert ok.stdout == "ok-from-server", ok
    denied = in_agent("curl -s -o /dev/null -w '%{http_code}' --max-time 20 http://example.com/")
    assert denied.stdout == "403", denied
    # Direct: to the server pod, the node, the API server's ClusterIP: nothing.
    for host, port in ((server["status"]["podIP"], 8080), (real_node.node_ip, 10250),
                       (real_node.service_cidr.rsplit(".", 1)[0] + ".1", 443)):
        direct = in_agent(f"curl -s --noproxy '*' --max-time 5 http://{host}:{port}/")
        assert direct.returncode in {7, 28}, (host, port, direct)  # refused / timed out
    # No DNS at all: neither an outside name nor the cluster's own resolve.
    for name in ("example.com", allowed):
        looked = in_agent(f"getent hosts {name}")
        assert looked.returncode != 0 and not looked.stdout, (name, looked)
    # No ServiceAccount token in the pod.
    token = in_agent("ls /var/run/secrets/kubernetes.io/serviceaccount/token")
    assert token.returncode != 0

    # Mutation check: without the agent's policy the same direct probe gets
    # through, so the probes above would see a leak.
    cluster.run("delete", "networkpolicy", "-n", ns, "-l", "paude.io/role=policy")
    direct_ip = server["status"]["podIP"]
    cluster.wait_for(
        lambda: in_agent(f"curl -s --noproxy '*' --max-time 5 http://{direct_ip}:8080/").stdout
        == "ok-from-server",
        timeout=30, what="the direct probe to leak once the policies are gone",
    )

    stopped = paude("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr

    def labelled() -> list[str]:
        return cluster.run("get", SESSION_KINDS, "-n", ns, "-l",
                           "app.kubernetes.io/managed-by=paude", "-o", "name").stdout.split()

    # The workspace volume outlives stop on purpose (docs/openshift.md). stop
    # returns while the pods still terminate (their grace periods).
    assert [o for o in labelled() if not o.startswith("pod/")] == []
    cluster.wait_for(lambda: labelled() == [], timeout=60, what="nothing labelled paude")
