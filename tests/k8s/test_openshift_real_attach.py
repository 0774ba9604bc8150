"""Attach to a real OpenShift-backend session on the real node from a real terminal.

The agent pod runs the real agent image, whose entrypoint started the tmux
session ``paude`` (Claude Code in its window); the test starts no tmux in
the pod. ``paude`` in a terminal (a pane of a private host tmux server)
exec-replaces itself with ``kubectl exec -it ... tmux attach -t paude``: the
pod's status line comes up on the terminal, Ctrl+b d detaches (kubectl
exits 0, the session keeps running) and ``paude attach`` comes back to the
same tmux server. The kwok counterpart (exec on the host) is
tests/k8s/test_openshift_attach.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from test_openshift_attach import PAUDE_TIMEOUT, OpenShiftCLI, attached_program, children

from terminal import Terminal, wait_until

if TYPE_CHECKING:
    from conftest import Cluster, RealImages

pytestmark = pytest.mark.k8s

STATUS_LINE = "Ctrl+b d to detach"  # the image's tmux.conf status-right


def test_paude_attaches_a_real_terminal_to_the_entrypoints_tmux_and_reattaches(
    cluster: Cluster,
    real_limited_kubeconfig: Path,
    real_images: RealImages,
    tmp_path: Path,
    terminal: Terminal,
) -> None:
    ns = yaml.safe_load(real_limited_kubeconfig.read_text())["contexts"][0]["context"]["namespace"]
    cli = OpenShiftCLI(cluster, ns, real_limited_kubeconfig, tmp_path)
    cli.workspace.mkdir()
    cli.kubectl.parent.mkdir()
    cli.kubectl.symlink_to(cluster.kubectl)
    config = cli.home / ".config" / "paude" / "paude.json"
    config.parent.mkdir(parents=True)
    backend = {"type": "openshift", "namespace": ns, "image": real_images.agent_tag,
               "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                             "limits": {"memory": "1Gi"}}}  # fmt: skip
    config.write_text(json.dumps({"backend": backend, "sync": {"enabled": False},
                                  "allowed_domains": ["example.com"]}))  # fmt: skip
    cli.run("--backend", "openshift", "--detach")
    (session,) = [s for s in json.loads(cli.run("sessions", "--json").stdout)
                  if s["workspace"] == str(cli.workspace)]  # fmt: skip
    pod = f"paude-{session['name']}-0"

    def tmux(*args: str) -> str:
        return cli.pod_exec(pod, "tmux", *args)

    # The entrypoint's tmux server, before the test attaches anything.
    server = tmux("display-message", "-p", "-t", "paude", "#{pid}").strip()
    assert server.isdigit()
    assert tmux("list-clients", "-t", "paude") == ""

    def on_screen(text: str) -> Callable[[], bool]:
        return lambda: text in terminal.screen()

    def clients() -> list[str]:
        return tmux("list-clients", "-t", "paude", "-F", "#{client_pid}").split()

    attach = ["kubectl", "--namespace", ns, "exec", "-it", pod, "-c", "agent",
              "--", "tmux", "attach", "-t", "paude"]  # fmt: skip
    expected = (str(cli.kubectl.resolve()), attach)
    terminal.type(cli.command_line("--backend", "openshift"), "Enter")
    wait_until("the pod's tmux status line", on_screen(STATUS_LINE),
               seconds=PAUDE_TIMEOUT, shown=terminal.screen)  # fmt: skip
    assert attached_program(terminal) == expected
    wait_until("a client on the entrypoint's session", lambda: len(clients()) == 1)
    first = clients()

    terminal.type("", "C-b", "d")
    wait_until("kubectl to exit", lambda: children(terminal.shell_pid()) == [],
               shown=terminal.screen)  # fmt: skip
    terminal.type("code=$?; clear; echo kubectl-exit=$code", "Enter")
    wait_until("kubectl's exit status", on_screen("kubectl-exit=0"), shown=terminal.screen)
    assert clients() == []
    sessions = json.loads(cli.run("sessions", "--json").stdout)
    assert [s["status"] for s in sessions] == ["running"], sessions

    assert STATUS_LINE not in terminal.screen()  # cleared
    terminal.type(cli.command_line("attach"), "Enter")
    wait_until("the status line again", on_screen(STATUS_LINE),
               seconds=PAUDE_TIMEOUT, shown=terminal.screen)  # fmt: skip
    wait_until("a client again", lambda: len(clients()) == 1)
    assert clients() != first  # a new exec's client ...
    assert tmux("display-message", "-p", "-t", "paude", "#{pid}").strip() == server  # same server
    terminal.type("", "C-b", "d")
    wait_until("kubectl to exit again", lambda: children(terminal.shell_pid()) == [],
               shown=terminal.screen)  # fmt: skip
    cli.run("stop")
