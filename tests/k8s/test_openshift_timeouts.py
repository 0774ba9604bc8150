"""Idle and max timeouts of an OpenShift-backend session on the real node.

As paude's limited user (its Role grants no RBAC objects and the agent pod
has no ServiceAccount token): the agent's entrypoint stops the session
itself, the kubelet's restart finds the stop recorded and waits, ``paude
sessions`` reads why from the pod's termination message, and ``paude``
resumes it through the user's own ``pods/exec``, on the same volume.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from test_openshift_real_node import REPO, run_paude

from terminal import Terminal, wait_until

if TYPE_CHECKING:
    from conftest import Cluster, RealImages

pytestmark = pytest.mark.k8s


@pytest.mark.usefixtures("real_node")
def test_timeouts_stop_a_session_that_paude_resumes_on_its_volume(
    cluster: Cluster,
    real_limited_kubeconfig: Path,
    real_images: RealImages,
    tmp_path: Path,
    terminal: Terminal,
) -> None:
    kc = real_limited_kubeconfig
    ns = yaml.safe_load(kc.read_text())["contexts"][0]["context"]["namespace"]
    home, workspace, bindir = tmp_path / "home", tmp_path / "workspace", tmp_path / "bin"
    for d in (home / ".config" / "paude", workspace, bindir):
        d.mkdir(parents=True)
    (bindir / "kubectl").symlink_to(cluster.kubectl)
    backend = {"type": "openshift", "namespace": ns, "image": real_images.agent_tag,
               "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                             "limits": {"memory": "1Gi"}},
               "timeout": {"idle": "30s", "max": "150s"}}
    config = {"backend": backend, "sync": {"enabled": False}}
    (home / ".config" / "paude" / "paude.json").write_text(json.dumps(config))

    def paude(*args: str) -> Any:
        return run_paude(workspace, home, kc, bindir / "kubectl", *args)

    def session() -> dict[str, Any]:
        listed = json.loads(paude("sessions", "--json").stdout)
        return dict(next(s for s in listed if s["workspace"] == str(workspace)))

    def wait_stopped(detail: str) -> None:
        wait_until(f"the session to stop ({detail})",
                   lambda: session()["status"] == "stopped", seconds=400,
                   shown=lambda: paude("sessions").stdout)
        assert session()["detail"] == detail

    started = paude("--backend", "openshift", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    name = session()["name"]
    wrote = paude("exec", "--", "sh", "-c", "echo agent-work > /workspace/agent.txt")
    assert wrote.returncode == 0, wrote

    # Idle: nobody attached and no output for 30 s.
    wait_stopped("idle 30s")
    pod = cluster.get("pod", f"paude-{name}-0", ns)
    assert pod is not None
    agent = pod["status"]["containerStatuses"][0]
    # The exit is the container's current state until the kubelet restarts it
    # (its back-off), then its last state: "stopped" is read from either.
    ended = agent["state"].get("terminated") or agent["lastState"].get("terminated")
    assert ended is not None, agent
    assert ended["exitCode"] == 80, agent
    assert ended["message"] == "idle 30s", agent
    refused = paude("attach", name)
    assert refused.returncode == 1 and "stopped: idle 30s" in refused.stderr, refused
    assert cluster.get("pvc", f"paude-{name}-workspace", ns) is not None

    resumed = paude("--backend", "openshift", "--detach")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming session" in resumed.stderr
    assert session()["status"] == "running"
    kept = paude("exec", "--", "cat", "/workspace/agent.txt")
    assert kept.stdout == "agent-work\n", kept

    # Attached: the idle timeout (30 s) stays off; max (150 s since this start) stops it.
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "KUBECONFIG": str(kc),
           "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1", "LANG": "C.UTF-8"}
    line = (f"cd {shlex.quote(str(workspace))} && env "
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            + f" {shlex.quote(sys.executable)} -m paude attach {name}")
    terminal.type(line, "Enter")
    wait_until("the agent's screen", lambda: "Claude Code" in terminal.screen(), seconds=120,
               shown=terminal.screen)
    wait_stopped("max 150s")
    assert paude("--backend", "openshift", "--detach").returncode == 0
    assert session()["status"] == "running"
    assert paude("stop", name).returncode == 0
