"""Attach in a real terminal to the tmux the agent image's entrypoint started, on the real node.

As paude's limited user, in a restricted namespace whose pods run on the
real node: ``paude --backend openshift --detach`` starts the real agent
image, whose entrypoint starts the tmux session "paude" (the test starts
no tmux in the pod). ``paude`` typed into a real terminal (a pane of a
private host tmux server) exec-replaces itself with ``kubectl exec -it``:
the API server's exec stream, the kubelet's, containerd's, a TTY in the
agent container, and a tmux client there attached to the entrypoint's
server. Keys typed in the terminal reach that server, Ctrl+b d detaches,
``paude`` comes back to the same server, and ``paude stop`` leaves nothing
labelled. The kwok counterpart (no container runs there, so the test makes
the tmux) is tests/k8s/test_openshift_attach.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from test_openshift_attach import OpenShiftCLI, attached_program, children, quick_attach
from test_openshift_real_node import SESSION_KINDS

from terminal import Terminal, wait_until

if TYPE_CHECKING:
    from conftest import Cluster, RealImages

pytestmark = pytest.mark.k8s

PAUDE_TIMEOUT = 300
ENTRYPOINT = "/usr/local/bin/paude-entrypoint"


@pytest.fixture
def real_cli(
    cluster: Cluster, real_limited_kubeconfig: Path, real_images: RealImages, tmp_path: Path
) -> OpenShiftCLI:
    kc = real_limited_kubeconfig
    ns = yaml.safe_load(kc.read_text())["contexts"][0]["context"]["namespace"]
    cli = OpenShiftCLI(cluster, ns, kc, tmp_path)
    cli.workspace.mkdir()
    cli.kubectl.parent.mkdir()
    cli.kubectl.symlink_to(cluster.kubectl)
    config = cli.home / ".config" / "paude" / "paude.json"
    config.parent.mkdir(parents=True)
    # The user's config selects the backend: a plain `paude` is for openshift.
    backend = {"type": "openshift", "namespace": ns, "image": real_images.agent_tag,
               "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                             "limits": {"memory": "1Gi"}}}  # fmt: skip
    config.write_text(json.dumps({"backend": backend, "sync": {"enabled": False}}))
    return cli


def server(cli: OpenShiftCLI, pod: str) -> str:
    """The pod's tmux server: its pid and start time, as one string."""
    return cli.pod_exec(pod, "tmux", "display-message", "-p", "-t", "paude",
                        "#{pid} #{start_time}").strip()  # fmt: skip


def clients(cli: OpenShiftCLI, pod: str) -> list[str]:
    out = cli.pod_exec(pod, "tmux", "list-clients", "-t", "paude", "-F", "#{client_pid}")
    return out.split()


def test_paude_attaches_a_real_terminal_to_the_entrypoints_tmux_and_reattaches(
    real_cli: OpenShiftCLI, terminal: Terminal
) -> None:
    cli = real_cli
    cli.run("--backend", "openshift", "--detach")
    (mine,) = [s for s in json.loads(cli.run("sessions", "--json").stdout)
               if s["workspace"] == str(cli.workspace)]  # fmt: skip
    name, pod = mine["name"], f"paude-{mine['name']}-0"
    version = cli.run("exec", "--", "claude", "--version")
    assert "Claude Code" in version.stdout, version

    # The tmux server runs, started by the entrypoint: its only window runs
    # the entrypoint again in agent mode (the variable its new-session sets),
    # and that runs the agent. This test has started no tmux in the pod.
    started = server(cli, pod)
    pane = cli.pod_exec(pod, "tmux", "display-message", "-p", "-t", "paude", "#{pane_pid}")
    window = cli.pod_exec(pod, "sh", "-c", f"tr '\\0' ' ' < /proc/{pane.strip()}/cmdline")
    assert window.split()[:2] == ["/bin/sh", ENTRYPOINT], window
    marked = cli.pod_exec(pod, "tmux", "show-environment", "-t", "paude", "PAUDE_AGENT_WINDOW")
    assert marked.strip() == "PAUDE_AGENT_WINDOW=1", marked
    assert clients(cli, pod) == []

    def on_screen(*texts: str) -> Callable[[], bool]:
        return lambda: all(t in terminal.screen() for t in texts)

    # The status line the entrypoint set ("paude: NAME") and tmux.conf's.
    status = (f"paude: {name}", "Ctrl+b d to detach")
    terminal.type(cli.command_line("--backend", "openshift"), "Enter")
    wait_until("the session's status line", on_screen(*status), seconds=PAUDE_TIMEOUT,
               shown=terminal.screen)  # fmt: skip
    exe, argv = attached_program(terminal)
    assert exe == str(cli.kubectl.resolve()) and argv[0] == "kubectl", (exe, argv)
    assert "exec" in argv and pod in argv and argv[-4:] == ["tmux", "attach", "-t", "paude"]
    wait_until("a client on the session", lambda: len(clients(cli, pod)) == 1)
    first = clients(cli, pod)
    # Keys typed in the terminal reach the pod's tmux server: a command at its prompt.
    terminal.type("", "C-b", ":")
    terminal.type("set-environment -g PAUDE_TEST_TYPED typed-42", "Enter")

    def typed() -> bool:
        got = cli.pod_exec(pod, "tmux", "show-environment", "-g", "PAUDE_TEST_TYPED", check=False)
        return got.strip() == "PAUDE_TEST_TYPED=typed-42"

    wait_until("the typed tmux command to run in the pod", typed, shown=terminal.screen)

    def detach() -> None:
        terminal.type("", "C-b", "d")
        wait_until("kubectl to exit", lambda: children(terminal.shell_pid()) == [],
                   seconds=60, shown=terminal.screen)  # fmt: skip
        terminal.type("code=$?; clear; echo kubectl-exit=$code", "Enter")
        wait_until("kubectl's exit status", on_screen("kubectl-exit=0"), shown=terminal.screen)
        wait_until("no client on the session", lambda: clients(cli, pod) == [])

    detach()
    assert server(cli, pod) == started
    sessions = json.loads(cli.run("sessions", "--json").stdout)
    assert [s["status"] for s in sessions] == ["running"], sessions

    # `paude` again: the same tmux server (same pid and start, what was typed
    # is still set), through a new exec's client.
    # It takes the quick path: one GET of the pod, nothing heavy loaded, and the
    # argv the full backend exec'd above; then it replaces itself with that kubectl.
    assert quick_attach(cli) == (argv, []) and not on_screen(*status)()
    terminal.type(cli.command_line(), "Enter")
    wait_until("the status line again", on_screen(*status), seconds=PAUDE_TIMEOUT,
               shown=terminal.screen)  # fmt: skip
    assert attached_program(terminal) == (exe, argv)
    wait_until("a client again", lambda: len(clients(cli, pod)) == 1)
    assert clients(cli, pod) != first
    assert server(cli, pod) == started and typed()
    detach()
    assert server(cli, pod) == started

    cli.run("stop")

    def labelled() -> list[str]:
        return cli.cluster.run("get", SESSION_KINDS, "-n", cli.namespace, "-l",
                               "app.kubernetes.io/managed-by=paude", "-o", "name").stdout.split()

    # stop returns while the pods still terminate (their grace periods).
    assert [o for o in labelled() if not o.startswith("pod/")] == []
    cli.cluster.wait_for(lambda: labelled() == [], timeout=120, what="nothing labelled paude")


def test_paude_exec_reads_stdin_and_is_interactive_on_a_terminal(
    real_cli: OpenShiftCLI, terminal: Terminal
) -> None:
    cli = real_cli
    cli.run("--backend", "openshift", "--detach")

    # Piped stdin reaches the command whole and ends with EOF; stdout and
    # stderr stay apart and the exit code passes through (no TTY: not a terminal).
    data = "x" * 199_999 + "\n"
    piped = subprocess.run(cli.argv("exec", "--", "sh", "-c", "wc -c; tty; echo err >&2; exit 4"),
                           cwd=cli.workspace, env=cli.env(), input=data, capture_output=True,
                           text=True, timeout=PAUDE_TIMEOUT, check=False)  # fmt: skip
    assert (piped.returncode, piped.stdout.split()) == (4, ["200000", "not", "a", "tty"]), piped
    assert "err" in piped.stderr.splitlines(), piped.stderr

    def on_screen(text: str) -> Callable[[], bool]:
        return lambda: text in terminal.screen()

    # On a terminal the command gets one (a pts in the pod) and reads what is typed.
    terminal.type(cli.command_line("exec", "--", "sh", "-c",
                                   "tty; read line; echo got-$line; exit 5"), "Enter")
    wait_until("the pod's terminal", on_screen("/dev/pts/"), seconds=PAUDE_TIMEOUT,
               shown=terminal.screen)  # fmt: skip
    terminal.type("typed-7", "Enter")
    wait_until("the typed line echoed back", on_screen("got-typed-7"), shown=terminal.screen)
    wait_until("paude exec to exit", lambda: children(terminal.shell_pid()) == [],
               seconds=60, shown=terminal.screen)  # fmt: skip
    terminal.type("echo exec-exit=$?", "Enter")
    wait_until("its exit status", on_screen("exec-exit=5"), shown=terminal.screen)

    # Output to a pipe: no TTY even with a terminal on stdin (as podman decides).
    terminal.type(cli.command_line("exec", "--", "tty") + " | sed s/^/piped-/", "Enter")
    wait_until("the piped answer", on_screen("piped-not a tty"), seconds=PAUDE_TIMEOUT,
               shown=terminal.screen)  # fmt: skip
    cli.run("stop")
