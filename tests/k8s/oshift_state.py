"""What exists of OpenShift sessions in a test's namespace, listed by paude's labels.

The podman counterpart is ``tests/podman/session_state.py``. Every object
of the kinds paude makes (and the controllers make for it: ReplicaSets,
pods) is listed, labelled or not, so that an object paude left without its
labels shows up too; the namespace is the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from test_openshift_attach import OpenShiftCLI

from paude.naming import LABEL_MANAGED_BY, MANAGED_BY

if TYPE_CHECKING:
    from conftest import Cluster

KINDS = ("statefulsets,pods,persistentvolumeclaims,secrets,configmaps,services,"
         "endpointslices,networkpolicies,deployments,replicasets")
_NOT_PAUDES = {"ConfigMap/kube-root-ca.crt"}  # every namespace has it


def what_exists(cluster: Cluster, namespace: str) -> list[str]:
    """Return ``Kind/name`` of every object of paude's kinds in ``namespace``.

    Fails if one of them does not carry ``app.kubernetes.io/managed-by=paude``.
    """
    out = cluster.run("get", KINDS, "-n", namespace, "-o", "json").stdout
    items = [o for o in json.loads(out)["items"] if _key(o) not in _NOT_PAUDES]
    unlabelled = [_key(o) for o in items
                  if (o["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) != MANAGED_BY]
    assert not unlabelled, f"objects without paude's label: {unlabelled}"
    return sorted(_key(o) for o in items)


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def planned(cli: OpenShiftCLI, *args: str) -> list[str]:
    """Return ``Kind/name`` of every object ``paude --dry-run ARGS`` would apply, in order."""
    text = cli.run("--backend", "openshift", "--dry-run", *args).stdout
    return [_key(doc) for doc in yaml.safe_load_all(text) if doc]


def one_healthy_session(plan: list[str], cluster: Cluster, namespace: str) -> list[str]:
    """Return what one running session of ``plan`` has: its objects, pods and ReplicaSet.

    The pods and the proxy's ReplicaSet have generated names: they are
    matched by what owns them (one of each), then named as they are.
    """
    found = what_exists(cluster, namespace)
    deployments = [p.split("/", 1)[1] for p in plan if p.startswith("Deployment/")]
    sets = [p.split("/", 1)[1] for p in plan if p.startswith("StatefulSet/")]
    made = [f"Pod/{s}-0" for s in sets]
    for deployment in deployments:  # one pod, one ReplicaSet: a second one fails the test
        made += [f for f in found if f.startswith(f"Pod/{deployment}-")][:1]
        made += [f for f in found if f.startswith(f"ReplicaSet/{deployment}-")][:1]
    return sorted([*plan, *made])


@dataclass
class Running:
    """A paude command started in the background; its output goes to files."""

    proc: subprocess.Popen[str]
    out: Path
    err: Path
    args: tuple[str, ...] = field(default=())

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def finish(self, *, timeout: float = 300) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.out.read_text(errors="replace") + self.stderr()


def spawn(cli: OpenShiftCLI, *args: str, env: dict[str, str] | None = None) -> Running:
    """Start ``paude ARGS`` in its own process group, without waiting."""
    tag = f"{time.monotonic_ns()}-{os.getpid()}"
    out, err = cli.root / f"{tag}.stdout", cli.root / f"{tag}.stderr"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(cli.argv(*args), cwd=cli.workspace,
                                env={**cli.env(), **(env or {})}, stdin=subprocess.DEVNULL,
                                stdout=o, stderr=e, text=True, start_new_session=True)
    return Running(proc, out, err, args)


def sessions(cli: OpenShiftCLI) -> list[dict[str, Any]]:
    return list(json.loads(cli.run("sessions", "--json").stdout))


def assert_healthy(cli: OpenShiftCLI, name: str, plan: list[str]) -> None:
    """One running session ``name``: its objects exactly, its pod ready, its proxy reachable.

    Reachable through its Service: the Service selects no pods, so its one
    EndpointSlice (paude writes it) must list the proxy's ready pod.
    """
    cluster, namespace = cli.cluster, cli.namespace
    listed = sessions(cli)
    assert [(s["name"], s["status"]) for s in listed] == [(name, "running")], listed
    assert what_exists(cluster, namespace) == one_healthy_session(plan, cluster, namespace)
    pod = cluster.get("pod", f"paude-{name}-0", namespace)
    assert pod is not None
    ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    assert ready.get("Ready") == "True", pod["status"]
    for deployment in (p.split("/", 1)[1] for p in plan if p.startswith("Deployment/")):
        proxy_pods = [cluster.get("pod", p.split("/", 1)[1], namespace)
                      for p in what_exists(cluster, namespace)
                      if p.startswith(f"Pod/{deployment}-")]
        assert len(proxy_pods) == 1 and proxy_pods[0] is not None, proxy_pods
        endpoints = cluster.get("endpointslice", deployment, namespace)
        assert endpoints is not None, f"no EndpointSlice for Service {deployment}"
        assert [e["addresses"] for e in endpoints["endpoints"]] == [
            [proxy_pods[0]["status"]["podIP"]]], endpoints


def assert_stops_clean(cli: OpenShiftCLI, name: str) -> None:
    """``paude stop`` leaves only the workspace volume; ``--force`` leaves nothing."""
    cluster, namespace = cli.cluster, cli.namespace
    cli.run("stop", name)
    wait_gone(cluster, namespace, [f"PersistentVolumeClaim/paude-{name}-workspace"])
    cli.run("stop", name, "--force", "--yes")
    wait_gone(cluster, namespace, [])


def wait_gone(cluster: Cluster, namespace: str, left: list[str]) -> None:
    """Wait until exactly ``left`` exists (pods end and PVCs go after their deletion)."""
    deadline = time.monotonic() + 120
    while (found := what_exists(cluster, namespace)) != left:
        if time.monotonic() > deadline:
            raise AssertionError(f"after 120s, {namespace} holds {found}, not only {left}")
        time.sleep(0.2)
