"""``paude doctor --backend openshift`` against the test cluster: login, namespace, RBAC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from conftest import Cluster

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


def doctor(kubeconfig: Path, tmp_path: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run the real CLI's ``doctor --backend openshift --json`` as that kubeconfig's user."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "KUBECONFIG": str(kubeconfig),
           "PYTHONPATH": str(SRC), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "paude", "doctor", "--backend", "openshift",
                           "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.stdout.startswith("{"), done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0), done.stderr
    return done.returncode, {c["name"]: c for c in report["checks"]}


def test_the_limited_user_has_what_paude_needs(
    cluster: Cluster, namespace: str, limited_kubeconfig: Path, tmp_path: Path
) -> None:
    _, checks = doctor(limited_kubeconfig, tmp_path)
    assert checks["kubeconfig"]["status"] == "ok"
    assert f"namespace {namespace}" in checks["kubeconfig"]["detail"]
    assert checks["cluster login"]["status"] == "ok"
    assert checks["namespace"]["status"] == "ok"  # it may not read Namespaces; that is fine
    assert checks["rbac"] == {"name": "rbac", "status": "ok",
                              "detail": f"paude's Role is granted in {namespace}", "fix": None}
    assert checks["networkpolicy"]["status"] == "skip"


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
