"""Time an OpenShift-backend session start, a second (converging) start and a reattach
lookup on the test cluster, and count the API requests each makes.

Usage: python bench/openshift_start.py [--runs N]
Starts the test cluster with tests/cluster/up.sh (reused when running), creates
a restricted namespace and runs as the cluster admin (RBAC does not change the
request count). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from paude.backends.base import NullReporter, SessionSpec  # noqa: E402
from paude.backends.openshift.backend import OpenShiftBackend  # noqa: E402
from paude.backends.openshift.client import KubeClient  # noqa: E402
from paude.config.models import Amounts, BackendConfig, PaudeConfig, Resources  # noqa: E402
from paude.runner import SystemRunner  # noqa: E402


def cluster_env() -> dict[str, str]:
    up = subprocess.run(
        [str(REPO / "tests/cluster/up.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line)


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    argv = [env["KUBECTL"], "--kubeconfig", env["KUBECONFIG"], *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True).stdout


def make_namespace(env: dict[str, str]) -> str:
    name = f"paude-bench-{secrets.token_hex(3)}"
    labels = {"pod-security.kubernetes.io/enforce": "restricted", "paude.io/test": "1"}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    kubectl(env, "apply", "-f", "-", stdin=json.dumps(ns))
    return name


def run_once(namespace: str, run: int) -> dict[str, Any]:
    log: list[str] = []
    client = KubeClient(context=None, namespace=namespace)
    client.on_request(lambda req: log.append(f"{req.method} {req.url.path}"))
    small = Resources(requests=Amounts(cpu="100m", memory="64Mi"), limits=Amounts(memory="128Mi"))
    config = PaudeConfig(
        backend=BackendConfig(type="openshift", namespace=namespace, image="b:1", resources=small)
    )
    backend = OpenShiftBackend(
        config, runner=SystemRunner(), reporter=NullReporter(), client=client
    )
    spec = SessionSpec(f"bench-{run}", Path("/w"), (".googleapis.com", "api.anthropic.com"))
    out: dict[str, Any] = {}
    for step, call in (
        ("start", lambda: backend.start_session(spec)),
        ("restart", lambda: backend.start_session(spec)),
        ("reattach_lookup", lambda: backend.find_session(spec.name)),
    ):
        before = len(log)
        start = time.monotonic()
        call()
        seconds = round(time.monotonic() - start, 3)
        made = log[before:]
        out[step] = {"seconds": seconds, "requests": len(made), "calls": dict(Counter(made))}
    backend.stop_session(spec.name)
    backend.remove_workspace(spec.name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = cluster_env()
    os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    namespace = make_namespace(env)
    try:
        runs = [run_once(namespace, i) for i in range(args.runs)]
    finally:
        kubectl(env, "delete", "namespace", namespace, "--wait=false")
    summary = {
        step: {
            "median_seconds": statistics.median(r[step]["seconds"] for r in runs),
            "requests": [r[step]["requests"] for r in runs],
        }
        for step in ("start", "restart", "reattach_lookup")
    }
    print(json.dumps({"runs": args.runs, "summary": summary, "detail": runs}, indent=2))


if __name__ == "__main__":
    main()
