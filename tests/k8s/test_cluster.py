"""Self-tests of the test Kubernetes cluster: it behaves like a real one.

Each test proves one property later paude tests rely on: the pinned version,
real controllers and scheduler, PVC binding, PodSecurity admission, RBAC for
paude's documented Role, and exec/cp/logs served by kwok on the host.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixture provides the instance
    from conftest import Cluster

pytestmark = pytest.mark.k8s

IMAGE = "localhost/paude-test:latest"  # never pulled: kwok runs no containers

# A pod that satisfies the "restricted" Pod Security Standard.
COMPLIANT_SPEC: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "agent",
            "image": IMAGE,
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


def pod(name: str, namespace: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": copy.deepcopy(spec or COMPLIANT_SPEC),
    }


def running_pod(cluster: Cluster, namespace: str) -> str:
    name = cluster.random_name("p")
    cluster.apply(pod(name, namespace))
    cluster.wait_pod_running(namespace, name)
    return name


def test_version_is_pinned(cluster: Cluster) -> None:
    raw = json.loads(cluster.run("get", "--raw", "/version").stdout)
    assert raw["gitVersion"] == cluster.version
    assert (raw["major"], raw["minor"]) == ("1", cluster.version.split(".")[1])
    client = json.loads(cluster.run("version", "-o", "json").stdout)["clientVersion"]
    assert client["gitVersion"] == cluster.version


def test_deployment_gets_a_scheduled_running_pod(cluster: Cluster, namespace: str) -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": COMPLIANT_SPEC}
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": template,
            },
        }
    )

    def running_pods() -> list[dict[str, Any]]:
        out = cluster.run("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout
        return [p for p in json.loads(out)["items"] if p["status"].get("phase") == "Running"]

    (running,) = cluster.wait_for(running_pods, timeout=60, what="a Running pod of the Deployment")
    assert running["spec"]["nodeName"].startswith("kwok-node-")
    conditions = {c["type"]: c["status"] for c in running["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True"
    owner = running["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet"  # made by the real Deployment controller


def test_statefulset_volume_claim_is_bound(cluster: Cluster, namespace: str) -> None:
    template = {"metadata": {"labels": {"app": "db"}}, "spec": COMPLIANT_SPEC}
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": template,
                "volumeClaimTemplates": [claim],
            },
        }
    )

    def bound() -> dict[str, Any] | None:
        pvc = cluster.get("pvc", "data-db-0", namespace)
        return pvc if pvc and pvc["status"].get("phase") == "Bound" else None

    pvc = cluster.wait_for(bound, timeout=60, what="PVC data-db-0 Bound")
    assert pvc["spec"]["storageClassName"] == "kwok-volume"  # the default class
    assert pvc["spec"]["volumeName"]
    running = cluster.wait_pod_running(namespace, "db-0")
    volumes = [
        v.get("persistentVolumeClaim", {}).get("claimName") for v in running["spec"]["volumes"]
    ]
    assert "data-db-0" in volumes


def _with_container_security(**security: Any) -> dict[str, Any]:
    spec = copy.deepcopy(COMPLIANT_SPEC)
    spec["containers"][0]["securityContext"].update(security)
    return spec


# Each spec breaks one rule of the restricted standard; the second item is
# what PodSecurity admission says about it. (privileged=true also needs
# allowPrivilegeEscalation=true, or API validation rejects it first.)
NON_COMPLIANT = {
    "privileged": (
        _with_container_security(privileged=True, allowPrivilegeEscalation=True),
        'privileged (container "agent" must not set securityContext.privileged=true)',
    ),
    "root": (
        _with_container_security(runAsUser=0),
        'runAsUser=0 (container "agent" must not set runAsUser=0)',
    ),
    "capabilities-not-dropped": (
        _with_container_security(capabilities={"drop": ["NET_RAW"]}),
        'unrestricted capabilities (container "agent" must set '
        'securityContext.capabilities.drop=["ALL"])',
    ),
}


@pytest.mark.parametrize("case", sorted(NON_COMPLIANT))
def test_restricted_namespace_rejects_non_compliant_pod(
    cluster: Cluster, namespace: str, case: str
) -> None:
    spec, message = NON_COMPLIANT[case]
    name = cluster.random_name("bad")
    result = cluster.run(
        "create", "-f", "-", input=json.dumps(pod(name, namespace, spec)), check=False
    )
    assert result.returncode != 0
    assert f'pods "{name}" is forbidden: violates PodSecurity "restricted:latest": ' in (
        result.stderr
    )
    assert message in result.stderr
    assert cluster.get("pod", name, namespace) is None


def test_restricted_namespace_admits_compliant_pod(cluster: Cluster, namespace: str) -> None:
    name = cluster.random_name("good")
    result = cluster.run("create", "-f", "-", input=json.dumps(pod(name, namespace)), check=False)
    assert result.returncode == 0, result.stderr
    assert "violates PodSecurity" not in result.stderr
    assert cluster.get("pod", name, namespace) is not None


def test_limited_user_can_create_pod_in_its_namespace(
    cluster: Cluster, namespace: str, limited_kubeconfig: Path
) -> None:
    name = cluster.random_name("mine")
    result = cluster.run(
        "create",
        "-f",
        "-",
        input=json.dumps(pod(name, namespace)),
        kubeconfig=limited_kubeconfig,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    created = cluster.get("pod", name, namespace)
    assert created is not None
    assert created["metadata"]["namespace"] == namespace


def test_limited_user_can_exec_and_read_logs(
    cluster: Cluster, namespace: str, limited_kubeconfig: Path
) -> None:
    name = running_pod(cluster, namespace)
    result = cluster.run(
        "exec", name, "--", "sh", "-c", "echo via-role", kubeconfig=limited_kubeconfig, check=False
    )
    assert (result.returncode, result.stdout) == (0, "via-role\n"), result.stderr
    logs = cluster.run("logs", name, kubeconfig=limited_kubeconfig, check=False)
    assert logs.returncode == 0, logs.stderr


def test_limited_user_cannot_read_secrets_elsewhere(
    cluster: Cluster, namespace: str, limited_kubeconfig: Path
) -> None:
    result = cluster.run(
        "get", "secrets", "-n", "kube-system", kubeconfig=limited_kubeconfig, check=False
    )
    assert result.returncode != 0
    user = f"system:serviceaccount:{namespace}:paude-user"
    assert (
        f'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
        'in the namespace "kube-system"'
    ) in result.stderr


def test_limited_user_cannot_create_cluster_role(
    cluster: Cluster, namespace: str, limited_kubeconfig: Path
) -> None:
    name = cluster.random_name("paude-escalate")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    result = cluster.run(
        "create", "-f", "-", input=json.dumps(role), kubeconfig=limited_kubeconfig, check=False
    )
    assert result.returncode != 0
    assert 'cannot create resource "clusterroles"' in result.stderr
    assert cluster.run("get", "clusterrole", name, check=False).returncode != 0


def test_exec_runs_in_the_shared_directory_by_default(cluster: Cluster, namespace: str) -> None:
    name = running_pod(cluster, namespace)
    shared = cluster.exec_root / "shared"
    result = cluster.run("exec", "-n", namespace, name, "--", "sh", "-c", 'pwd; echo "$HOME"')
    assert result.stdout == f"{shared}\n{shared}\n"


def test_exec_returns_output_and_exit_code(cluster: Cluster, namespace: str) -> None:
    name = running_pod(cluster, namespace)
    workdir = cluster.exec_workdir(namespace, name)
    result = cluster.run(
        "exec",
        "-n",
        namespace,
        name,
        "--",
        "sh",
        "-c",
        'echo "out:$(pwd)"; echo err >&2; exit 7',
        check=False,
    )
    assert result.stdout == f"out:{workdir}\n"
    assert "err" in result.stderr
    assert result.returncode == 7

    env = cluster.run("exec", "-n", namespace, name, "--", "sh", "-c", 'echo "$HOME $TMUX_TMPDIR"')
    assert env.stdout == f"{workdir} {workdir}\n"

    ok = cluster.run("exec", "-n", namespace, name, "--", "true", check=False)
    assert ok.returncode == 0


def test_exec_stdin_reaches_the_command(cluster: Cluster, namespace: str) -> None:
    name = running_pod(cluster, namespace)
    workdir = cluster.exec_workdir(namespace, name)
    result = cluster.run(
        "exec", "-i", "-n", namespace, name, "--", "sh", "-c", "cat > piped.txt", input="hello\n"
    )
    assert result.returncode == 0
    assert (workdir / "piped.txt").read_text() == "hello\n"


def test_cp_round_trips_a_file(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    name = running_pod(cluster, namespace)
    workdir = cluster.exec_workdir(namespace, name)
    payload = bytes(range(256)) * 64 + b"paude\n"
    src = tmp_path / "src.bin"
    src.write_bytes(payload)

    cluster.run("cp", str(src), f"{namespace}/{name}:copied.bin")
    assert (workdir / "copied.bin").read_bytes() == payload

    back = tmp_path / "back.bin"
    cluster.run("cp", f"{namespace}/{name}:copied.bin", str(back))
    assert back.read_bytes() == payload


def test_logs_serve_the_configured_file(cluster: Cluster, namespace: str) -> None:
    name = running_pod(cluster, namespace)
    marker = f"paude-log-{cluster.random_name('m')}"
    cluster.write_log(marker)

    def logged() -> bool:
        return marker in cluster.run("logs", "-n", namespace, name, check=False).stdout

    assert cluster.wait_for(logged, timeout=30, what="the marker in kubectl logs")
