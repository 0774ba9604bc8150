"""Fixtures for tests against the real test Kubernetes cluster.

The cluster (real kube-apiserver with admission and RBAC, controller manager,
scheduler, etcd; kwok fakes the nodes) is built and started once per session
by ``tests/cluster/up.sh``; see docs/test-cluster.md. When it cannot be built
or started the ``cluster`` fixture FAILS with the reason: it never skips.
Tests that run containers use the real node (``up.sh --real-node``): the
``real_*`` fixtures below.

Fixtures:

- ``cluster`` (session): a :class:`Cluster` with the admin kubeconfig, the
  server URL, the built kubectl and helpers to run it.
- ``namespace`` (function): a fresh namespace labelled
  ``pod-security.kubernetes.io/enforce=restricted``, deleted afterwards.
- ``limited_kubeconfig`` (function): path of a kubeconfig for a
  ServiceAccount bound only to paude's documented Role
  (``paude.backends.openshift.rbac``) in ``namespace``.

The real node (a kubelet with containerd, kube-proxy, kube-router enforcing
NetworkPolicy, CoreDNS, a registry needing a password; root only):

- ``real_node`` (session): a :class:`RealNode`: its name, network facts,
  the registry with its credentials, :meth:`RealNode.push`.
- ``real_namespace`` (function): like ``namespace`` (restricted), but every
  pod in it runs on the real node (the API server's PodNodeSelector and
  PodTolerationRestriction plugins, from the namespace's annotations); no
  change to the pods is needed. Holds the node's NetworkPolicy lock shared.
- ``real_limited_kubeconfig`` (function): paude's limited user in
  ``real_namespace``.
- ``real_images`` (session): paude's agent and proxy images, built by
  paude (podman) and pushed to the registry: :class:`RealImages` with
  the references pods pull. (Until paude pushes them itself.)
- ``netpol_off`` (function): a context manager that stops the NetworkPolicy
  controller and removes its rules, for tests of a cluster that does not
  enforce NetworkPolicy; it waits for every ``real_namespace`` test to end
  and starts the controller again afterwards.

Use: ``def test_x(real_node, real_namespace, real_limited_kubeconfig,
real_images): ...`` and create pods without ``nodeName``; the pod image is
``real_images.agent`` (it has curl and node for probes and test servers).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
import yaml

try:
    from paude.backends.openshift.rbac import build_role, build_role_binding
except ImportError:  # paude not installed: use the checkout's sources
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from paude.backends.openshift.rbac import build_role, build_role_binding
from paude.container import ImageSpec, ensure_image
from paude.runner import SystemRunner

CLUSTER_DIR = Path(__file__).resolve().parents[1] / "cluster"
# A cold build of the Kubernetes binaries takes tens of minutes on 2 cores.
UP_TIMEOUT = float(os.environ.get("PAUDE_CLUSTER_UP_TIMEOUT", "3600"))
LIMITED_SA = "paude-user"
TEST_LABEL = "paude.io/test"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Held shared by every real-node test, exclusively while NetworkPolicy is off.
NETPOL_LOCK = Path("/run/paude-node.netpol.lock")

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


def _up(*args: str) -> dict[str, str]:
    """Run tests/cluster/up.sh; return its KEY=VALUE lines (fail with its log)."""
    try:
        up = subprocess.run(
            [str(CLUSTER_DIR / "up.sh"), *args],
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"could not start the test cluster: {err}")
    if up.returncode != 0:
        tail = "\n".join(up.stderr.splitlines()[-40:])
        pytest.fail(f"tests/cluster/up.sh {' '.join(args)} failed ({up.returncode}):\n{tail}")
    return _parse_env(up.stdout)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Build (if needed) and start the test cluster once per session."""
    env = _up()
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


@contextmanager
def _restricted_namespace(
    cluster: Cluster, annotations: dict[str, str] | None = None
) -> Iterator[str]:
    name = random_name("paude-t")
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            TEST_LABEL: "1",
        },
    }
    if annotations:
        metadata["annotations"] = annotations
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
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
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace enforcing the ``restricted`` Pod Security Standard."""
    with _restricted_namespace(cluster) as name:
        yield name


@pytest.fixture
def limited_kubeconfig(cluster: Cluster, namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig for a ServiceAccount bound only to paude's Role in ``namespace``."""
    return _limited_kubeconfig(cluster, namespace, tmp_path / "limited.kubeconfig")


def _limited_kubeconfig(cluster: Cluster, namespace: str, path: Path) -> Path:
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


@dataclass(frozen=True)
class RealNode:
    """The real node (``up.sh --real-node``) and its registry."""

    name: str
    label: str
    taint: str
    node_ip: str
    pod_cidr: str
    service_cidr: str
    dns_ip: str
    hosts_file: Path
    registry: str
    registry_user: str
    registry_password: str
    registry_auth_file: Path
    registry_cert_dir: Path

    def push(self, local: str, repository: str, tag: str | None = None) -> str:
        """Push the podman image ``local`` as ``<registry>/<repository>``; return it by digest.

        The tag is ``tag``, else ``local``'s own.
        """
        if tag is None:
            tag = local.rsplit(":", 1)[-1] if ":" in local.rsplit("/", 1)[-1] else "latest"
        remote = f"{self.registry}/{repository}:{tag}"
        handle, name = tempfile.mkstemp(prefix="paude-push-digest-")
        os.close(handle)
        with_digest = Path(name)
        try:
            result = subprocess.run(
                [
                    "podman", "push", "--quiet",
                    "--authfile", str(self.registry_auth_file),
                    "--cert-dir", str(self.registry_cert_dir / self.registry),
                    "--digestfile", str(with_digest),
                    local, remote,
                ],
                capture_output=True, text=True, timeout=600, check=False,
            )
            if result.returncode != 0:
                pytest.fail(f"podman push {local} {remote} failed: {result.stderr.strip()}")
            digest = with_digest.read_text().strip()
        finally:
            with_digest.unlink(missing_ok=True)
        return f"{self.registry}/{repository}@{digest}"


@dataclass(frozen=True)
class RealImages:
    """paude's images in the real node's registry.

    ``agent`` and ``proxy`` are references by digest; ``agent_tag`` names the
    agent by a tag that its proxy shares beside it (``paude-proxy``, what
    paude's ``backend.image`` setting expects).
    """

    agent: str
    proxy: str
    agent_tag: str


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> RealNode:
    """Start the real node beside kwok's (once; it stays up with the cluster)."""
    if os.geteuid() != 0:
        pytest.fail("the real node needs root (containerd, a bridge, iptables)", pytrace=False)
    env = _up("--real-node")
    return RealNode(
        name=env["REAL_NODE"],
        label=env["REAL_NODE_LABEL"],
        taint=env["REAL_NODE_TAINT"],
        node_ip=env["NODE_IP"],
        pod_cidr=env["POD_CIDR"],
        service_cidr=env["SERVICE_CIDR"],
        dns_ip=env["DNS_IP"],
        hosts_file=Path(env["NODE_HOSTS"]),
        registry=env["REGISTRY"],
        registry_user=env["REGISTRY_USER"],
        registry_password=env["REGISTRY_PASSWORD"],
        registry_auth_file=Path(env["REGISTRY_AUTH_FILE"]),
        registry_cert_dir=Path(env["REGISTRY_CERT_DIR"]),
    )


@pytest.fixture
def _netpol_shared() -> Iterator[IO[str]]:
    """The NetworkPolicy lock, held shared for the test (netpol_off upgrades it)."""
    with NETPOL_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield handle


@pytest.fixture
def real_namespace(
    cluster: Cluster, real_node: RealNode, _netpol_shared: IO[str]
) -> Iterator[str]:
    """A fresh restricted namespace whose pods all run on the real node."""
    tolerations = [{"key": real_node.taint, "operator": "Exists", "effect": "NoSchedule"}]
    annotations = {
        "scheduler.alpha.kubernetes.io/node-selector": f"{real_node.label}=true",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(tolerations),
    }
    with _restricted_namespace(cluster, annotations) as name:
        yield name


@pytest.fixture
def real_limited_kubeconfig(cluster: Cluster, real_namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig for paude's limited user in ``real_namespace``."""
    return _limited_kubeconfig(cluster, real_namespace, tmp_path / "limited.kubeconfig")


@pytest.fixture(scope="session")
def real_images(real_node: RealNode) -> RealImages:
    """paude's agent and proxy images, built by paude and pushed to the registry."""
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else None
    runner = SystemRunner()
    agent = ensure_image(runner, ImageSpec(kind="agent", ca_bundle=ca))
    proxy = ensure_image(runner, ImageSpec(kind="proxy"))
    # Both hashes: a checkout with another proxy image (same agent) must not
    # overwrite this one's proxy under a shared tag (the node caches by tag).
    tag = f"{agent.rsplit(':', 1)[-1]}-{proxy.rsplit(':', 1)[-1]}"
    return RealImages(
        agent=real_node.push(agent, "paude-test/paude-agent", tag),
        proxy=real_node.push(proxy, "paude-test/paude-proxy", tag),
        agent_tag=f"{real_node.registry}/paude-test/paude-agent:{tag}",
    )


@pytest.fixture
def netpol_off(
    real_node: RealNode, _netpol_shared: IO[str]
) -> Callable[[], AbstractContextManager[None]]:
    """Return a context manager: NetworkPolicy unenforced on the real node inside it."""

    @contextmanager
    def off() -> Iterator[None]:
        script = str(CLUSTER_DIR / "real-node.sh")
        # Waits until no other real-node test runs (their shared locks).
        fcntl.flock(_netpol_shared, fcntl.LOCK_EX)
        try:
            subprocess.run([script, "netpol", "off"], check=True, timeout=60)
            try:
                yield
            finally:
                subprocess.run([script, "netpol", "on"], check=True, timeout=60)
        finally:
            fcntl.flock(_netpol_shared, fcntl.LOCK_SH)

    return off
