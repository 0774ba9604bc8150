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
  a reattach), with its requests;
- ``reattach``: ``attach_session`` on a terminal (a pty), until tmux has
  drawn the session's status line, then Ctrl+b d; with the API requests
  paude makes itself (kubectl's own are the peer's);
- ``reattach_cli``: the same through the whole CLI, ``paude attach NAME``;
- ``peer_exec``: ``kubectl exec -it POD -c agent -- tmux attach -t paude``
  on the same pty, the same way, with kubectl's requests (``-v=6``).
Prints one JSON object; the ratios start/peer, reattach_cli/peer_exec and
the requests per start against the ``kubectl run`` peer's are the figures.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import secrets
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import Counter
from collections.abc import Sequence
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
# tmux's status line (the image's tmux.conf: "Ctrl+b d to detach"): drawn once attached.
ATTACHED = b"detach"
DETACH = b"\x02d"  # Ctrl+b d
# kubectl -v=6 logs one line per response.
REQUEST = re.compile(r'"Response" verb="[A-Z]+"|\b(?:GET|POST|PUT|PATCH|DELETE) https://')
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


def counted(env: dict[str, str], *args: str) -> int:
    """Run kubectl with ``-v=6``; return how many API requests it made."""
    argv = [env["KUBECTL"], "--kubeconfig", env["KUBECONFIG"], "-v=6", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300)
    return len(REQUEST.findall(done.stderr))


def on_terminal(argv: Sequence[str], env: dict[str, str] | None = None,
                log: Path | None = None) -> float:  # fmt: skip
    """Run ``argv`` on a new pty (200x50) until tmux draws its status line; return the seconds.

    Then Ctrl+b d, and wait for the program to exit 0. ``log``: its stderr
    goes there (else to the pty).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    stderr = log.open("w") if log else slave
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=stderr, env=env, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )  # fmt: skip
    os.close(slave)
    seen, seconds, deadline = b"", None, start + 300
    try:
        while (proc.poll() is None or select.select([master], [], [], 0)[0]) and (
            time.monotonic() < deadline
        ):
            if not select.select([master], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the pty's other side is closed
                break
            seen = (seen + chunk)[-4096:]
            if seconds is None and ATTACHED in seen:
                seconds = time.monotonic() - start
                os.write(master, DETACH)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(timeout=60)
    finally:
        os.close(master)
        if log:
            stderr.close()  # type: ignore[union-attr]
    if seconds is None or code != 0:
        raise SystemExit(f"{argv[:3]}...: never attached or exited {code}: {seen[-400:]!r}")
    return round(seconds, 3)


class TerminalRunner(SystemRunner):
    """The system runner, but attach runs on a pty of its own (:func:`on_terminal`)."""

    seconds: float | None = None  # kubectl's start to attached
    attached_at: float | None = None  # time.monotonic() once attached

    def exec_replace(self, argv: Sequence[str]) -> None:
        begun = time.monotonic()
        self.seconds = on_terminal(argv, {**os.environ, "TERM": "xterm-256color"})
        self.attached_at = begun + self.seconds


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


def cli_env(env: dict[str, str], namespace: str, image: str, root: Path) -> dict[str, str]:
    """The environment of ``paude`` as a user in ``namespace`` runs it (its own HOME)."""
    config = root / "home" / ".config" / "paude" / "paude.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    backend = {"type": "openshift", "namespace": namespace, "image": image}
    config.write_text(json.dumps({"backend": backend}))
    bindir = root / "bin"
    bindir.mkdir(exist_ok=True)
    if not (bindir / "kubectl").exists():
        (bindir / "kubectl").symlink_to(env["KUBECTL"])
    return {**os.environ, "HOME": str(root / "home"), "XDG_CONFIG_HOME": str(config.parents[1]),
            "PATH": f"{bindir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO / "src"),
            "TERM": "xterm-256color", "NO_COLOR": "1"}  # fmt: skip


def timed(log: list[str], call: Any) -> dict[str, Any]:
    before, start = len(log), time.monotonic()
    call()
    made = log[before:]
    return {"seconds": round(time.monotonic() - start, 3), "requests": len(made),
            "calls": dict(Counter(made))}  # fmt: skip


def run_once(env: dict[str, str], namespace: str, image: str, run: int,
             workspace: Path) -> dict[str, Any]:  # fmt: skip
    log: list[str] = []
    client = KubeClient(context=None, namespace=namespace)
    client.on_request(lambda req: log.append(f"{req.method} {req.url.path}"))
    small = Resources(requests=Amounts(cpu="100m", memory="256Mi"), limits=Amounts(memory="1Gi"))
    # With its sync, as a user starts it: the initial sync of a small tree and
    # the background sync's start are part of the start.
    config = PaudeConfig(
        backend=BackendConfig(type="openshift", namespace=namespace, image=image, resources=small),
    )
    runner = TerminalRunner()
    backend = OpenShiftBackend(config, runner=runner, reporter=NullReporter(), client=client)
    spec = SessionSpec(f"bench-{run}", workspace, ("api.anthropic.com",))
    out: dict[str, Any] = {"start": timed(log, lambda: backend.start_session(spec))}
    out["reattach_lookup"] = timed(log, lambda: backend.find_session(spec.name))
    begun = time.monotonic()
    out["reattach"] = timed(log, lambda: backend.attach_session(spec.name))
    assert runner.attached_at is not None
    # To the moment tmux drew its status line (``seconds`` includes the detach).
    out["reattach"]["to_attached"] = round(runner.attached_at - begun, 3)
    out["reattach"]["kubectl_to_attached"] = runner.seconds
    paude = [sys.executable, "-m", "paude", "attach", spec.name]
    out["reattach_cli"] = {"seconds": on_terminal(paude, cli_env(env, namespace, image,
                                                                  workspace.parent))}  # fmt: skip
    pod = f"paude-{spec.name}-0"
    peer_log = workspace.parent / "peer-exec.log"
    attach = [env["KUBECTL"], "--kubeconfig", env["KUBECONFIG"], "-v=6", "-n", namespace,
              "exec", "-it", pod, "-c", "agent", "--", "tmux", "attach", "-t", "paude"]
    seconds = on_terminal(attach, {**os.environ, "TERM": "xterm-256color"}, log=peer_log)
    out["peer_exec"] = {"seconds": seconds,
                        "requests": len(REQUEST.findall(peer_log.read_text()))}  # fmt: skip
    backend.stop_session(spec.name)
    backend.remove_workspace(spec.name)
    peer = f"peer-{run}"
    overrides = json.dumps(OVERRIDES).replace("IMAGE", image)
    start = time.monotonic()
    requests = counted(env, "run", peer, "-n", namespace, f"--image={image}",
                       f"--overrides={overrides}")  # fmt: skip
    requests += counted(env, "wait", "-n", namespace, "--for=condition=Ready", f"pod/{peer}",
                        "--timeout=300s")  # fmt: skip
    out["peer"] = {"seconds": round(time.monotonic() - start, 3), "requests": requests}
    kubectl(env, "delete", "pod", peer, "-n", namespace, "--wait=false")
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    steps = ("start", "peer", "reattach_lookup", "reattach", "reattach_cli", "peer_exec")
    def seconds(run: dict[str, Any], step: str) -> float:
        return float(run[step]["to_attached" if step == "reattach" else "seconds"])

    summary: dict[str, Any] = {
        step: {"median_seconds": statistics.median(seconds(r, step) for r in runs)}
        for step in steps
    }
    for step in ("start", "peer", "reattach_lookup", "reattach", "peer_exec"):
        summary[step]["requests"] = [r[step]["requests"] for r in runs]

    def ratio(a: str, b: str) -> float:
        return round(summary[a]["median_seconds"] / summary[b]["median_seconds"], 2)

    summary["start_over_peer"] = ratio("start", "peer")
    summary["reattach_cli_over_peer_exec"] = ratio("reattach_cli", "peer_exec")
    summary["reattach_over_peer_exec"] = ratio("reattach", "peer_exec")
    summary["start_requests_over_peer"] = round(
        statistics.median(r["start"]["requests"] for r in runs)
        / statistics.median(r["peer"]["requests"] for r in runs), 2)  # fmt: skip
    return summary


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
    summary = summarize(runs)
    print(json.dumps({"runs": args.runs, "summary": summary, "detail": runs}, indent=2))


if __name__ == "__main__":
    main()
