"""Fixtures for tests against the real test Kubernetes cluster.

The cluster (real kube-apiserver with admission and RBAC, controller manager,
scheduler, etcd; kwok fakes the nodes) is built and started once per session
by ``tests/cluster/up.sh``; see docs/test-cluster.md. When it cannot be built
or started the ``cluster`` fixture FAILS with the reason: it never skips.

Fixtures:

- ``cluster`` (session): a :class:`Cluster` with the admin kubeconfig, the
  server URL, the built kubectl and helpers to run it.
- ``namespace`` (function): a fresh namespace labelled
  ``pod-security.kubernetes.io/enforce=restricted``, deleted afterwards.
- ``limited_kubeconfig`` (function): path of a kubeconfig for a
  ServiceAccount bound only to paude's documented Role
  (``paude.backends.openshift.rbac``) in ``namespace``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

try:
    from paude.backends.openshift.rbac import build_role, build_role_binding
except ImportError:  # paude not installed: use the checkout's sources
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from paude.backends.openshift.rbac import build_role, build_role_binding

CLUSTER_DIR = Path(__file__).resolve().parents[1] / "cluster"
# A cold build of the Kubernetes binaries takes tens of minutes on 2 cores.
UP_TIMEOUT = float(os.environ.get("PAUDE_CLUSTER_UP_TIMEOUT", "3600"))
LIMITED_SA = "paude-user"
TEST_LABEL = "paude.io/test"

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns a truthy value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def random_name(prefix: str) -> str:
    """Return a unique DNS-1123 name."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Cluster:
    """The running test cluster (admin access) and helpers to drive it."""

    kubeconfig: Path
    server: str
    kubectl: Path
    exec_root: Path
    logs_file: Path
    version: str

    wait_for = staticmethod(wait_for)
    random_name = staticmethod(random_name)

    def run(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl with ``kubeconfig`` (admin by default)."""
        argv = [str(self.kubectl), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def apply(self, *objs: dict[str, Any], kubeconfig: Path | None = None) -> None:
        """Create or update objects with ``kubectl apply``."""
        doc = yaml.safe_dump_all(objs)
        self.run("apply", "-f", "-", input=doc, kubeconfig=kubeconfig)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """Return the object as a dict, or None when it does not exist."""
        result = self.run("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait_pod_running(self, namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the pod is Running on a node; return it."""

        def probe() -> dict[str, Any] | None:
            pod = self.get("pod", name, namespace)
            if pod and pod["status"].get("phase") == "Running" and pod["spec"].get("nodeName"):
                return pod
            return None

        return wait_for(probe, timeout=timeout, what=f"pod {namespace}/{name} Running")

    def write_log(self, message: str) -> None:
        """Append a line to the log every container serves (``kubectl logs``).

        kwok parses the file as CRI logs: ``<RFC 3339 time> stdout F <text>``.
        """
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        with self.logs_file.open("a") as logs:
            logs.write(f"{stamp} stdout F {message}\n")

    def exec_workdir(self, namespace: str, pod: str) -> Path:
        """Give ``pod`` its own host directory for ``kubectl exec``; return it.

        kwok runs exec'd commands on the host; without this they run in a
        directory shared by all pods (the ClusterExec default). The per-pod
        directory (also the command's HOME and TMUX_TMPDIR) comes from a kwok
        ``Exec`` object named after the pod. Absolute paths in commands are
        still host paths.
        """
        workdir = self.exec_root / "pods" / namespace / pod
        workdir.mkdir(parents=True, exist_ok=True)
        # HOME and tmux's socket directory per pod, too, so that pods don't
        # share dotfiles or tmux servers with each other or the host.
        envs = [
            {"name": "HOME", "value": str(workdir)},
            {"name": "TMUX_TMPDIR", "value": str(workdir)},
        ]
        self.apply(
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "Exec",
                "metadata": {"name": pod, "namespace": namespace},
                "spec": {"execs": [{"local": {"workDir": str(workdir), "envs": envs}}]},
            }
        )

        def probe() -> bool:
            result = self.run("exec", "-n", namespace, pod, "--", "pwd", check=False)
            return result.returncode == 0 and result.stdout.strip() == str(workdir)

        wait_for(probe, timeout=30, what=f"exec workdir of {namespace}/{pod}")
        return workdir


def _parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Build (if needed) and start the test cluster once per session."""
    try:
        up = subprocess.run(
            [str(CLUSTER_DIR / "up.sh")],
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"could not start the test cluster: {err}")
    if up.returncode != 0:
        tail = "\n".join(up.stderr.splitlines()[-40:])
        pytest.fail(f"tests/cluster/up.sh failed ({up.returncode}):\n{tail}")
    env = _parse_env(up.stdout)
    yield Cluster(
        kubeconfig=Path(env["KUBECONFIG"]),
        server=env["SERVER"],
        kubectl=Path(env["KUBECTL"]),
        exec_root=Path(env["EXEC_ROOT"]),
        logs_file=Path(env["LOGS_FILE"]),
        version=env["KUBE_VERSION"],
    )
    # Stop the cluster only if this session started it and nobody asked to
    # keep it (with PAUDE_KEEP_CLUSTER=1 the next run reuses it in ~0.1 s).
    if env.get("STARTED") == "1" and os.environ.get("PAUDE_KEEP_CLUSTER") != "1":
        down = subprocess.run(
            [str(CLUSTER_DIR / "down.sh")], capture_output=True, text=True, timeout=120, check=False
        )
        if down.returncode != 0:
            pytest.fail(f"tests/cluster/down.sh failed ({down.returncode}):\n{down.stderr}")


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace enforcing the ``restricted`` Pod Security Standard."""
    name = random_name("paude-t")
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    TEST_LABEL: "1",
                },
            },
        }
    )
    try:
        # Pods are refused until the ServiceAccount controller has made
        # "default" in the new namespace.
        cluster.wait_for(
            lambda: cluster.get("serviceaccount", "default", name),
            timeout=30,
            what=f"ServiceAccount {name}/default",
        )
        yield name
    finally:
        cluster.run("delete", "namespace", name, "--wait=false")


@pytest.fixture
def limited_kubeconfig(cluster: Cluster, namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig for a ServiceAccount bound only to paude's Role in ``namespace``."""
    subject = {"kind": "ServiceAccount", "name": LIMITED_SA, "namespace": namespace}
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": LIMITED_SA, "namespace": namespace},
        },
        build_role(namespace),
        build_role_binding(namespace, subject=subject),
    )
    token = cluster.run("create", "token", LIMITED_SA, "-n", namespace, "--duration=1h").stdout
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    admin_cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    user = f"system:serviceaccount:{namespace}:{LIMITED_SA}"
    path = tmp_path / "limited.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "paude-test", "cluster": admin_cluster["cluster"]}],
                "users": [{"name": user, "user": {"token": token.strip()}}],
                "contexts": [
                    {
                        "name": "limited",
                        "context": {"cluster": "paude-test", "user": user, "namespace": namespace},
                    }
                ],
                "current-context": "limited",
            }
        )
    )
    path.chmod(0o600)

    # RBAC is served from an informer cache: wait until the binding is seen.
    def bound() -> bool:
        result = cluster.run(
            "auth", "can-i", "create", "pods", "-n", namespace, kubeconfig=path, check=False
        )
        return result.stdout.strip() == "yes"

    wait_for(bound, timeout=30, what=f"RoleBinding for {user}")
    return path
