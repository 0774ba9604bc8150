"""Attach, detach and reattach to an OpenShift session through the API server's exec.

The real CLI runs in a real terminal (a pane of a private host tmux server),
as the user bound only to paude's Role, in a namespace enforcing PodSecurity
``restricted``. ``paude --backend openshift`` on a running session
exec-replaces itself with ``kubectl exec -it POD -c agent -- tmux attach -t
paude``: the keystrokes and the screen travel through the API server's exec
stream with a TTY, to the tmux that kwok runs for the pod. Ctrl+b d detaches,
the session keeps running, and ``paude attach`` comes back to the same tmux
server.

The podman counterpart is
``tests/podman/test_session.py::test_attach_detach_and_reattach_to_the_same_session``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

from terminal import Terminal, wait_until

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/paude-test:1"  # never pulled: kwok runs no containers
INNER_MARKER = "INNER-MARKER"
PAUDE_TIMEOUT = 180


def children(pid: int) -> list[int]:
    """Return the pids of ``pid``'s children (empty once it has none or is gone)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode() for part in raw.split(b"\0") if part]


def parent_name(pid: int) -> str:
    """Return the command name of ``pid``'s parent."""
    status = Path(f"/proc/{pid}/status").read_text()
    ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
    return Path(f"/proc/{ppid}/comm").read_text().strip()


@dataclass
class OpenShiftCLI:
    """The real paude CLI as the limited user, with a scratch HOME and workspace."""

    cluster: Cluster
    namespace: str
    kubeconfig: Path
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def kubectl(self) -> Path:
        """``kubectl`` as paude finds it on PATH (/usr/bin/kubectl is a stub here)."""
        return self.root / "bin" / "kubectl"

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.kubectl.parent}:{os.environ['PATH']}",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "KUBECONFIG": str(self.kubeconfig),
            # This checkout's paude, whatever else is installed (or half-installed).
            "PYTHONPATH": str(REPO / "src"),
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
        }

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "paude", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(*args), cwd=self.workspace, env=self.env(),
                              capture_output=True, text=True, timeout=PAUDE_TIMEOUT, check=False)
        assert proc.returncode == 0, (
            f"paude {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def command_line(self, *args: str) -> str:
        """The shell line that runs paude in the terminal, with only this environment."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env().items())
        return (f"cd {shlex.quote(str(self.workspace))} && "
                f'env -i {env} TERM="$TERM" {shlex.join(self.argv(*args))}')

    def pod_exec(self, pod: str, *command: str, check: bool = True) -> str:
        """Run ``command`` in the pod's agent container through the API server, as this user."""
        result = self.cluster.run("exec", "-n", self.namespace, pod, "-c", "agent", "--",
                                  *command, kubeconfig=self.kubeconfig, check=check)
        return result.stdout


# What the quick reattach (cli/quick_openshift.py) decides for the workspace's
# session, run as the CLI runs it, and which heavy modules that loaded.
_QUICK = """
import json, os, sys
from paude.cli.fastpath import attach_name
from paude.cli.quick_openshift import build_quick_attach
argv = build_quick_attach(attach_name(sys.argv[1:], os.getcwd()), os.getcwd(), os.environ)
heavy = [m for m in ("typer", "rich", "pydantic", "lightkube", "httpx2") if m in sys.modules]
print(json.dumps({"argv": argv, "heavy": heavy}))
"""


def quick_attach(cli: OpenShiftCLI, *args: str) -> tuple[list[str] | None, list[str]]:
    """Return the argv the quick reattach would exec (None: the full CLI) and what it loaded."""
    proc = subprocess.run([sys.executable, "-c", _QUICK, *args], cwd=cli.workspace,
                          env=cli.env(), capture_output=True, text=True, timeout=PAUDE_TIMEOUT,
                          check=True)  # fmt: skip
    out = json.loads(proc.stdout)
    return out["argv"], out["heavy"]


@pytest.fixture
def openshift_cli(
    cluster: Cluster, namespace: str, limited_kubeconfig: Path, tmp_path: Path
) -> OpenShiftCLI:
    cli = OpenShiftCLI(cluster, namespace, limited_kubeconfig, tmp_path)
    cli.workspace.mkdir()
    cli.kubectl.parent.mkdir()
    cli.kubectl.symlink_to(cluster.kubectl)
    config = cli.home / ".config" / "paude" / "paude.json"
    config.parent.mkdir(parents=True)
    # The user's config selects the backend, so a plain `paude attach` is for openshift.
    backend = {
        "type": "openshift",
        "namespace": namespace,
        "image": IMAGE,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "256Mi"}},
    }
    # kwok runs exec'd commands on the host: no pod workspace to sync.
    config.write_text(json.dumps({"backend": backend, "sync": {"enabled": False}}))
    return cli


def give_exec_a_terminal_type(cluster: Cluster, namespace: str, pod: str, workdir: Path) -> None:
    """Give the pod's exec'd commands TERM=xterm, as container runtimes do for a TTY exec.

    kwok's exec inherits the environment of whoever started the cluster, which
    may have no TERM; ``tmux attach`` refuses to run without one. Same Exec
    object as ``cluster.exec_workdir`` made, plus TERM and a marker to wait for.
    """
    marker = secrets.token_hex(4)
    envs = {"HOME": str(workdir), "TMUX_TMPDIR": str(workdir), "TERM": "xterm",
            "PAUDE_TEST_EXEC": marker}
    cluster.apply({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Exec",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"execs": [{"local": {
            "workDir": str(workdir),
            "envs": [{"name": k, "value": v} for k, v in envs.items()],
        }}]},
    })

    def applied() -> bool:
        result = cluster.run("exec", "-n", namespace, pod, "--", "sh", "-c",
                             "echo $PAUDE_TEST_EXEC:$TERM", check=False)
        return result.stdout.strip() == f"{marker}:xterm"

    cluster.wait_for(applied, timeout=30, what=f"TERM in the exec environment of {pod}")


@pytest.fixture
def running_session(cluster: Cluster, openshift_cli: OpenShiftCLI) -> Iterator[str]:
    """Start the workspace's session detached and its inner tmux; yield the pod name."""
    cli = openshift_cli
    cli.run("--backend", "openshift", "--detach")
    sessions = json.loads(cli.run("sessions", "--json").stdout)
    mine = [s for s in sessions if s["workspace"] == str(cli.workspace)]
    assert [s["status"] for s in mine] == ["running"], sessions
    pod = f"paude-{mine[0]['name']}-0"
    workdir = cluster.exec_workdir(cli.namespace, pod)
    give_exec_a_terminal_type(cluster, cli.namespace, pod, workdir)
    # In a real pod the image's entrypoint starts the agent in a tmux session
    # named "paude". kwok runs no container, so this stands in for it: the
    # same tmux session, made through the same exec path, whose window is a
    # shell that first prints a marker. It runs on the host in the pod's exec
    # directory, with the pod's own TMUX_TMPDIR, so its tmux server is
    # separate from every other one.
    try:
        cli.pod_exec(pod, "tmux", "new-session", "-d", "-s", "paude", "-x", "120", "-y", "40",
                     f'sh -c "echo {INNER_MARKER}; exec sh"')
        yield pod
    finally:
        # The inner tmux server is a host process: end it through the exec
        # path, then (should that fail) through its socket on the host.
        cli.pod_exec(pod, "tmux", "kill-server", check=False)
        for socket in workdir.glob("tmux-*/*"):
            subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True,
                           check=False, timeout=30)


def inner_pids(cli: OpenShiftCLI, pod: str) -> str:
    """Return the inner tmux server's pid and its window's pid, as one string."""
    return cli.pod_exec(pod, "tmux", "display-message", "-p", "-t", "paude",
                        "#{pid} #{pane_pid}").strip()


def inner_clients(cli: OpenShiftCLI, pod: str) -> list[int]:
    """Return the pids of the tmux clients attached to the inner session."""
    out = cli.pod_exec(pod, "tmux", "list-clients", "-t", "paude", "-F", "#{client_pid}")
    return [int(pid) for pid in out.split()]


def attached_program(terminal: Terminal) -> tuple[str, list[str]]:
    """Return the executable and argv of the program the terminal's shell runs paude as."""
    kids = children(terminal.shell_pid())
    assert len(kids) == 1, kids
    return os.readlink(f"/proc/{kids[0]}/exe"), cmdline(kids[0])


def test_attach_detach_and_reattach_through_kubectl_exec(
    openshift_cli: OpenShiftCLI, running_session: str, terminal: Terminal
) -> None:
    cli, pod = openshift_cli, running_session
    pids_before = inner_pids(cli, pod)
    assert inner_clients(cli, pod) == []
    # paude finds kubectl on PATH and exec-replaces itself with it: same argv[0].
    attach = ["kubectl", "--namespace", cli.namespace, "exec", "-it", pod, "-c", "agent",
              "--", "tmux", "attach", "-t", "paude"]
    expected = (str(cli.kubectl.resolve()), attach)

    def on_screen(text: str) -> Callable[[], bool]:
        return lambda: text in terminal.screen()

    # A second `paude` for the running session attaches this terminal to it.
    terminal.type(cli.command_line("--backend", "openshift"), "Enter")
    wait_until("the inner session's screen", on_screen(INNER_MARKER),
               seconds=PAUDE_TIMEOUT, shown=terminal.screen)
    # paude replaced itself with kubectl exec -it (the API server's exec, with a TTY) ...
    assert attached_program(terminal) == expected
    # ... whose tmux client, run by kwok for the pod, is attached to the inner session.
    wait_until("a client on the inner session", lambda: bool(inner_clients(cli, pod)))
    clients = inner_clients(cli, pod)
    assert len(clients) == 1 and parent_name(clients[0]).startswith("kwok"), clients
    # Keys typed in the terminal reach the pod's shell, and its output comes back.
    terminal.type("echo typed-$((6*7))", "Enter")
    wait_until("the shell's answer", on_screen("typed-42"), shown=terminal.screen)
    inner_screen = cli.pod_exec(pod, "tmux", "capture-pane", "-p", "-t", "paude")
    assert "typed-42" in inner_screen, inner_screen

    # Ctrl+b d detaches: tmux attach exits 0, and so does kubectl, through the
    # exec stream. (tmux's last words, "[detached (from session paude)]", are
    # not asserted: kwok's exec can end the stream before the pty is drained.)
    terminal.type("", "C-b", "d")
    wait_until("kubectl to exit", lambda: children(terminal.shell_pid()) == [],
               shown=terminal.screen)
    terminal.type("code=$?; clear; echo kubectl-exit=$code", "Enter")
    wait_until("kubectl's exit status", on_screen("kubectl-exit=0"), shown=terminal.screen)
    assert inner_clients(cli, pod) == []
    assert inner_pids(cli, pod) == pids_before
    sessions = json.loads(cli.run("sessions", "--json").stdout)
    assert [s["status"] for s in sessions] == ["running"], sessions

    # `paude attach` takes the quick path: one GET of the pod, nothing heavy
    # loaded, and the very argv the full backend exec'd above.
    assert quick_attach(cli, "attach") == (attach, [])
    assert quick_attach(cli, "attach", "not-a-session") == (None, [])
    # A workspace paude.json steers it only as `paude trust` approved it: one the
    # agent (or a clone) wrote goes to the full CLI, which asks or refuses.
    (cli.workspace / "paude.json").write_text('{"sync": {"enabled": false}}')
    assert quick_attach(cli, "attach")[0] is None
    cli.run("trust")
    assert quick_attach(cli, "attach") == (attach, [])
    (cli.workspace / "paude.json").write_text('{"backend": {"namespace": "elsewhere"}, '
                                              '"sync": {"enabled": false}}')
    assert quick_attach(cli, "attach")[0] is None
    # With the sync on but not running here, the full CLI (which restarts it) attaches.
    (cli.workspace / "paude.json").write_text('{"sync": {"enabled": true}}')
    cli.run("trust")
    assert quick_attach(cli, "attach")[0] is None
    (cli.workspace / "paude.json").unlink()
    # `paude attach` comes back to the same tmux server, shell and screen.
    assert "typed-42" not in terminal.screen()  # cleared
    terminal.type(cli.command_line("attach"), "Enter")
    wait_until("the inner session's screen again", on_screen("typed-42"),
               seconds=PAUDE_TIMEOUT, shown=terminal.screen)
    assert INNER_MARKER in terminal.screen()
    assert attached_program(terminal) == expected
    wait_until("a client again", lambda: bool(inner_clients(cli, pod)))
    again = inner_clients(cli, pod)
    assert len(again) == 1 and again != clients, (clients, again)  # a new exec's client
    assert inner_pids(cli, pod) == pids_before
