"""Ten OpenShift-backend sessions started and stopped in a loop on the test cluster:
nothing leaks, and the last start is as fast as the first (``session_loop.py
--backend openshift``).

Runs on the running test cluster (docs/test-cluster.md; this never starts or
stops it: it reads ``$STATE/cluster.env``), in a namespace of its own that
enforces PodSecurity ``restricted``, as the cluster admin, on kwok's nodes:
no container runs, so a start is paude's own work and the API server's (the
objects applied, the watch until the pod is Ready, the proxy's EndpointSlice),
not an image pull.

Each loop runs the real CLI: ``paude --backend openshift --detach`` of the
same session name, then ``paude stop --force --yes`` (the workspace volume
too, so every start makes every object anew). After each stop it waits until
no object of paude's kinds is left in the namespace (pods and PVCs go after
their deletion is accepted), and fails the run if one is still there after
60 s. Beside it, in the same run, the raw equivalent: ``kubectl apply
--server-side`` of the session's export (``paude manifests``), ``kubectl
wait`` for the agent pod, and ``kubectl delete`` of everything by paude's
label, gives the cluster's own drift.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PAUDE = [sys.executable, "-m", "paude"]
REPO = Path(__file__).resolve().parents[1]
KINDS = ("statefulsets,pods,persistentvolumeclaims,secrets,configmaps,services,"
         "endpointslices,networkpolicies,deployments,replicasets")
IMAGE = "localhost/paude-test:1"  # never pulled: kwok runs no containers
DRAIN_SECONDS = 60


def cluster_env() -> dict[str, str]:
    """Return the running test cluster's settings (never starts it)."""
    name = os.environ.get("PAUDE_CLUSTER_NAME", "paude-test")
    default = Path(os.environ.get("TMPDIR", "/tmp")) / f"paude-test-cluster-{name}"
    path = Path(os.environ.get("PAUDE_CLUSTER_STATE") or default) / "cluster.env"
    if not path.exists():
        sys.exit(f"no test cluster: {path} is missing (start it with tests/cluster/up.sh)")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


class Scratch:
    """A HOME whose paude.json selects the namespace, a workspace, kubectl on PATH."""

    def __init__(self, cluster: dict[str, str], namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.root = Path(tempfile.mkdtemp(prefix="paude-bench-oloop-"))
        self.workspace = self.root / "ws"
        self.workspace.mkdir()
        (self.root / "bin").mkdir()
        (self.root / "bin" / "kubectl").symlink_to(cluster["KUBECTL"])
        config = self.root / "home" / ".config" / "paude" / "paude.json"
        config.parent.mkdir(parents=True)
        backend = {"type": "openshift", "namespace": namespace, "image": IMAGE,
                   "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                 "limits": {"memory": "128Mi"}}}
        config.write_text(json.dumps({"backend": backend, "sync": {"enabled": False}}))

    def env(self) -> dict[str, str]:
        home = self.root / "home"
        return {"PATH": f"{self.root / 'bin'}:{os.environ['PATH']}", "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "KUBECONFIG": self.cluster["KUBECONFIG"],
                "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1", "LANG": "C.UTF-8"}

    def run(self, argv: list[str], stdin: str | None = None) -> str:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False,
                              cwd=self.workspace, env=self.env(), timeout=600)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc.stdout

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.run([self.cluster["KUBECTL"], "-n", self.namespace, *args], stdin)

    def state_files(self) -> set[str]:
        root = self.root / "home" / ".local" / "state" / "paude"
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and "logs" not in p.parts}


def what_exists(box: Scratch) -> list[str]:
    """Every object of paude's kinds in the namespace, labelled or not."""
    items = json.loads(box.kubectl("get", KINDS, "-o", "json"))["items"]
    found = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in items)
    return [f for f in found if f != "ConfigMap/kube-root-ca.crt"]


def drain(box: Scratch) -> tuple[float, list[str]]:
    """Wait until nothing is left; return the seconds it took and what is left at the end."""
    start = time.perf_counter()
    while (left := what_exists(box)) and time.perf_counter() - start < DRAIN_SECONDS:
        time.sleep(0.2)
    return time.perf_counter() - start, left


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


Sample = tuple[float, float, float, list[str]]  # start s, stop s, drain s, left


def paude_loop(box: Scratch, loops: int, name: str) -> list[Sample]:
    start = [*PAUDE, "--backend", "openshift", "--detach", "-q", "--name", name]
    stop = [*PAUDE, "stop", name, "--force", "--yes"]
    samples: list[Sample] = []
    for _ in range(loops):
        up, down = timed(lambda: box.run(start)), timed(lambda: box.run(stop))
        samples.append((up, down, *drain(box)))
    return samples


def raw_loop(box: Scratch, loops: int, name: str) -> list[Sample]:
    export = box.run([*PAUDE, "manifests", "--name", name])
    pod = f"pod/paude-{name}-0"

    def up() -> None:
        box.kubectl("apply", "--server-side", "--field-manager", "bench", "-f", "-", stdin=export)
        _wait_pod(box, pod)

    def down() -> None:
        box.kubectl("delete", KINDS, "-l", "app.kubernetes.io/managed-by=paude", "--wait=false")

    samples: list[Sample] = []
    for _ in range(loops):
        up_s, down_s = timed(up), timed(down)
        samples.append((up_s, down_s, *drain(box)))
    return samples


def _wait_pod(box: Scratch, pod: str) -> None:
    """Wait for ``pod`` to exist (``kubectl wait`` fails on a missing one), then Ready."""
    deadline = time.perf_counter() + 300
    while not box.kubectl("get", pod, "--ignore-not-found", "-o", "name").strip():
        if time.perf_counter() > deadline:
            sys.exit(f"{pod} never appeared")
        time.sleep(0.05)
    box.kubectl("wait", "--for=condition=Ready", pod, "--timeout=300s")


def report(label: str, samples: list[Sample]) -> None:
    starts = [s[0] for s in samples]
    print(f"{label}: start s per loop: " + " ".join(f"{s:.2f}" for s in starts))
    print(f"{label}: stop s per loop:  " + " ".join(f"{s[1]:.2f}" for s in samples))
    print(f"{label}: drain s per loop: " + " ".join(f"{s[2]:.2f}" for s in samples))
    print(f"{label}: start of loop {len(starts)} / loop 1 = {starts[-1] / starts[0]:.2f}; "
          f"mean of the last 3 / first 3 = {sum(starts[-3:]) / sum(starts[:3]):.2f}")
    for n, sample in enumerate(samples, 1):
        if sample[3]:
            print(f"{label}: left after stop {n}: {sample[3]}")


def main(loops: int) -> None:
    cluster = cluster_env()
    namespace = f"paude-bench-loop-{os.urandom(3).hex()}"
    labels = {"pod-security.kubernetes.io/enforce": "restricted", "paude.io/test": "1"}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
                                                                "labels": labels}}
    box = Scratch(cluster, namespace)
    box.run([cluster["KUBECTL"], "apply", "-f", "-"], stdin=json.dumps(ns))
    name = "loop-" + os.urandom(3).hex()
    files_before = box.state_files()
    try:
        ours = paude_loop(box, loops, name)
        raw = raw_loop(box, loops, name)
    finally:
        box.run([cluster["KUBECTL"], "delete", "namespace", namespace, "--wait=false"])
    print(f"namespace {namespace}, kwok nodes, as the cluster admin")
    report("paude", ours)
    report("raw kubectl", raw)
    print(f"new paude state files: {sorted(box.state_files() - files_before) or 'none'}")
    if any(sample[3] for sample in ours):
        sys.exit(1)
