"""``paude doctor --backend openshift`` against the test cluster: login, namespace, RBAC,
and whether NetworkPolicy is enforced (a probe pod on the real node, NetworkPolicy on and off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from conftest import Cluster

if TYPE_CHECKING:
    from conftest import RealImages

SRC = Path(__file__).resolve().parents[2] / "src"


def kubeconfig_with_token(cluster: Cluster, namespace: str, token: str, path: Path) -> Path:
    """Write a kubeconfig for ``cluster`` that logs in with ``token`` into ``namespace``."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "paude-test", "cluster": server["cluster"]}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "paude-test", "user": "u",
                                                "namespace": namespace}}],
        "current-context": "c",
    }))
    path.chmod(0o600)
    return path


def doctor(
    kubeconfig: Path, tmp_path: Path, image: str | None = None
) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run the real CLI's ``doctor --backend openshift --json`` as that kubeconfig's user.

    ``image``: the ``backend.image`` the NetworkPolicy probe runs.
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if image is not None:
        (tmp_path / "config" / "paude").mkdir(parents=True, exist_ok=True)
        config = {"backend": {"type": "openshift", "image": image}}
        (tmp_path / "config" / "paude" / "paude.json").write_text(json.dumps(config))
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "KUBECONFIG": str(kubeconfig),
           "PYTHONPATH": str(SRC), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "paude", "doctor", "--backend", "openshift",
                           "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.stdout.startswith("{"), done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0), done.stderr
    return done.returncode, {c["name"]: c for c in report["checks"]}


def wait_probe_gone(cluster: Cluster, namespace: str) -> None:
    """Wait until doctor's probe policy and its pod (deleted by the garbage collector) are gone."""
    def gone() -> bool:
        return cluster.run("get", "pods,networkpolicies", "-n", namespace, "-l",
                           "app.kubernetes.io/managed-by=paude", "-o", "name").stdout.strip() == ""
    cluster.wait_for(gone, timeout=60, what="the probe pod and its policy deleted")


def test_the_limited_user_has_what_paude_needs_and_networkpolicy_is_enforced(
    cluster: Cluster, real_namespace: str, real_limited_kubeconfig: Path,
    real_images: RealImages, tmp_path: Path,
) -> None:  # fmt: skip
    _, checks = doctor(real_limited_kubeconfig, tmp_path, real_images.agent_tag)
    assert checks["kubeconfig"]["status"] == "ok"
    assert f"namespace {real_namespace}" in checks["kubeconfig"]["detail"]
    assert checks["cluster login"]["status"] == "ok"
    assert checks["namespace"]["status"] == "ok"  # it may not read Namespaces; that is fine
    assert checks["rbac"] == {"name": "rbac", "status": "ok",
                              "detail": f"paude's Role is granted in {real_namespace}",
                              "fix": None}  # fmt: skip
    assert checks["networkpolicy"] == {
        "name": "networkpolicy", "status": "ok", "fix": None,
        "detail": "enforced: a pod under a deny-all NetworkPolicy could not reach the cluster DNS",
    }  # fmt: skip
    wait_probe_gone(cluster, real_namespace)  # the probe cleans up after itself


def test_a_cluster_that_does_not_enforce_networkpolicy_is_a_failed_check_with_the_fix(  # noqa: PLR0917 (fixtures)
    cluster: Cluster, real_namespace: str, real_limited_kubeconfig: Path,
    real_images: RealImages, netpol_off: Callable[[], AbstractContextManager[None]],
    tmp_path: Path,
) -> None:  # fmt: skip
    with netpol_off():
        code, checks = doctor(real_limited_kubeconfig, tmp_path, real_images.agent_tag)
    assert code == 1
    netpol = checks["networkpolicy"]
    assert netpol["status"] == "fail"
    assert netpol["detail"] == ("not enforced: a pod under a deny-all NetworkPolicy still"
                                " reached the cluster DNS")
    assert "enforces NetworkPolicy" in netpol["fix"] and "--allow-network" in netpol["fix"]
    assert checks["rbac"]["status"] == "ok"  # the one failed line is NetworkPolicy's
    wait_probe_gone(cluster, real_namespace)


def test_a_user_without_the_role_is_told_what_is_missing(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "nobody", "namespace": namespace}})
    token = cluster.run("create", "token", "nobody", "-n", namespace, "--duration=1h").stdout
    kubeconfig = kubeconfig_with_token(cluster, namespace, token.strip(), tmp_path / "kc")
    code, checks = doctor(kubeconfig, tmp_path)
    assert code == 1
    assert checks["cluster login"]["status"] == "ok"
    rbac = checks["rbac"]
    assert rbac["status"] == "fail"
    assert rbac["detail"].startswith(f"in {namespace} you may not: get pods, list pods")
    assert rbac["fix"] == (f"Ask a cluster admin to run: paude setup --print-rbac --namespace "
                           f"{namespace} --user YOU")
    # It may not create the probe either: that line says so, and is no verdict.
    assert checks["networkpolicy"]["status"] == "skip"
    assert checks["networkpolicy"]["detail"].startswith("not checked: ")


def test_a_token_the_cluster_refuses_is_no_cluster_login(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = kubeconfig_with_token(cluster, namespace, "not-a-token", tmp_path / "kc")
    code, checks = doctor(kubeconfig, tmp_path)
    assert code == 1
    login = checks["cluster login"]
    assert login["status"] == "fail" and "refused the credentials (401" in login["detail"]
    assert login["fix"].startswith(f"Log in again: oc login {cluster.server}")
    assert checks["rbac"]["status"] == "skip"
