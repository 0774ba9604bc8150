"""Time a session start on the test cluster's real node against a bare ``kubectl run``.

Usage: python bench/openshift_real_node.py [--runs N]   (root: the real node)
Starts the cluster and its real node (tests/cluster/up.sh --real-node),
pushes paude's agent and proxy images to the node's registry (built by
paude first when missing), and in a namespace whose pods run on the real
node measures, per run:
- ``start``: OpenShiftBackend.start_session, create to agent (and proxy) Ready,
  then the initial sync of a 20-file workspace and the background sync's
  start (what a user's start does), with the API requests it makes;
- ``peer``: ``kubectl run`` of the same agent image (restricted
  securityContext, ``sleep``) until its pod is Ready (``kubectl wait``);
- ``reattach_lookup``: find_session of the running session (the API part of
  a reattach), with its requests.
Prints one JSON object; the ratio start/peer is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from paude.backends.base import NullReporter, SessionSpec  # noqa: E402
from paude.backends.openshift.backend import OpenShiftBackend  # noqa: E402
from paude.backends.openshift.client import KubeClient  # noqa: E402
from paude.config.models import (  # noqa: E402
    Amounts,
    BackendConfig,
    PaudeConfig,
    Resources,
)
from paude.container import ImageSpec, ensure_image  # noqa: E402
from paude.runner import SystemRunner  # noqa: E402

CA = Path("/etc/ssl/certs/ca-certificates.crt")
OVERRIDES = {
    "spec": {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "peer", "image": "IMAGE", "command": ["sleep", "infinity"],
            "securityContext": {"allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}, "runAsUser": 1000},
        }],
    }
}  # fmt: skip


def up() -> dict[str, str]:
    out = subprocess.run([str(REPO / "tests/cluster/up.sh"), "--real-node"], capture_output=True,
                         text=True, check=True, timeout=3600).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    argv = [env["KUBECTL"], "--kubeconfig", env["KUBECONFIG"], *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True,
                          timeout=300).stdout


def push(env: dict[str, str], local: str, repository: str, tag: str) -> None:
    remote = f"{env['REGISTRY']}/{repository}:{tag}"
    subprocess.run(["podman", "push", "--quiet", "--authfile", env["REGISTRY_AUTH_FILE"],
                    "--cert-dir", f"{env['REGISTRY_CERT_DIR']}/{env['REGISTRY']}", local, remote],
                   check=True, capture_output=True, timeout=600)


def images(env: dict[str, str]) -> str:
    """Push the agent and its sibling proxy; return the agent's reference by tag."""
    runner = SystemRunner()
    agent = ensure_image(runner, ImageSpec(kind="agent", ca_bundle=CA.read_bytes()))
    proxy = ensure_image(runner, ImageSpec(kind="proxy"))
    tag = agent.rsplit(":", 1)[-1]
    push(env, agent, "paude-test/paude-agent", tag)
    push(env, proxy, "paude-test/paude-proxy", tag)
    return f"{env['REGISTRY']}/paude-test/paude-agent:{tag}"


def make_namespace(env: dict[str, str]) -> str:
    name = f"paude-bench-{secrets.token_hex(3)}"
    tolerations = [{"key": env["REAL_NODE_TAINT"], "operator": "Exists", "effect": "NoSchedule"}]
    meta = {
        "name": name,
        "labels": {"pod-security.kubernetes.io/enforce": "restricted", "paude.io/test": "1"},
        "annotations": {
            "scheduler.alpha.kubernetes.io/node-selector": f"{env['REAL_NODE_LABEL']}=true",
            "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(tolerations),
        },
    }
    kubectl(env, "apply", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}))
    return name


def run_once(env: dict[str, str], namespace: str, image: str, run: int,
             workspace: Path) -> dict[str, Any]:
    log: list[str] = []
    client = KubeClient(context=None, namespace=namespace)
    client.on_request(lambda req: log.append(f"{req.method} {req.url.path}"))
    small = Resources(requests=Amounts(cpu="100m", memory="256Mi"), limits=Amounts(memory="1Gi"))
    # With its sync, as a user starts it: the initial sync of a small tree and
    # the background sync's start are part of the start.
    config = PaudeConfig(
        backend=BackendConfig(type="openshift", namespace=namespace, image=image, resources=small),
    )
    backend = OpenShiftBackend(config, runner=SystemRunner(), reporter=NullReporter(),
                               client=client)
    spec = SessionSpec(f"bench-{run}", workspace, ("api.anthropic.com",))
    out: dict[str, Any] = {}
    for step, call in (("start", lambda: backend.start_session(spec)),
                       ("reattach_lookup", lambda: backend.find_session(spec.name))):
        before, start = len(log), time.monotonic()
        call()
        made = log[before:]
        out[step] = {"seconds": round(time.monotonic() - start, 3), "requests": len(made),
                     "calls": dict(Counter(made))}
    backend.stop_session(spec.name)
    backend.remove_workspace(spec.name)
    pod = f"peer-{run}"
    overrides = json.dumps(OVERRIDES).replace("IMAGE", image)
    start = time.monotonic()
    kubectl(env, "run", pod, "-n", namespace, f"--image={image}", f"--overrides={overrides}")
    kubectl(env, "wait", "-n", namespace, "--for=condition=Ready", f"pod/{pod}", "--timeout=300s")
    out["peer"] = {"seconds": round(time.monotonic() - start, 3)}
    kubectl(env, "delete", "pod", pod, "-n", namespace, "--wait=false")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = up()
    os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    image = images(env)
    namespace = make_namespace(env)
    with tempfile.TemporaryDirectory(prefix="paude-bench-") as tmp:
        # The sync's state (and its process's lock) stays in the bench's own directory.
        os.environ["XDG_STATE_HOME"] = f"{tmp}/state"
        workspace = Path(tmp) / "workspace"
        (workspace / "src").mkdir(parents=True)
        for i in range(20):
            (workspace / "src" / f"m{i}.py").write_text(f"x = {i}\n")
        try:
            runs = [run_once(env, namespace, image, i, workspace) for i in range(args.runs)]
        finally:
            kubectl(env, "delete", "namespace", namespace, "--wait=false")
    summary: dict[str, Any] = {
        step: {"median_seconds": statistics.median(r[step]["seconds"] for r in runs)}
        for step in ("start", "peer", "reattach_lookup")
    }
    for step in ("start", "reattach_lookup"):
        summary[step]["requests"] = [r[step]["requests"] for r in runs]
    summary["start_over_peer"] = round(
        summary["start"]["median_seconds"] / summary["peer"]["median_seconds"], 2)
    print(json.dumps({"runs": args.runs, "summary": summary, "detail": runs}, indent=2))


if __name__ == "__main__":
    main()
