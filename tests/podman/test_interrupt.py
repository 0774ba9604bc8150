"""Concurrent and interrupted commands converge, rootful and rootless.

Two starts of one session at once, ``kill -9`` of paude at points of a start
followed by ``paude`` again, and ``paude stop`` during a start. Each test
ends by listing what exists by the session's label (containers, networks,
volumes) and by its name prefix (nothing unlabelled either). Points of a
start are reached with a gate in front of the real podman (gate.py), not by
racing the start with a poll.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakenet import random_name
from gate import Gate
from session_state import NOTHING, assert_healthy, assert_stops_clean, what_exists

from conftest import PaudeCLI


@dataclass
class Running:
    """A paude command started in the background; its output goes to files."""

    proc: subprocess.Popen[str]
    out: Path
    err: Path

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def finish(self, *, timeout: float = 600) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.out.read_text(errors="replace") + self.stderr()


def spawn(cli: PaudeCLI, *args: str, gate: Gate | None = None) -> Running:
    """Start ``paude ARGS`` without waiting, optionally held by ``gate``."""
    tag = random_name("out")
    out, err = cli.root / f"{tag}.stdout", cli.root / f"{tag}.stderr"
    env = dict(cli.extra_env)
    if gate is not None:
        cli.extra_env.update(gate.env(os.environ["PATH"]))
    try:
        argv, full_env = cli.argv(*args), cli.env()
    finally:
        cli.extra_env = env
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(argv, cwd=cli.workspace, env=full_env, stdin=subprocess.DEVNULL,
                                stdout=o, stderr=e, text=True, start_new_session=True)
    return Running(proc, out, err)


def wait_for(what: str, probe: Callable[[], bool], *, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """Answer whether ``pid`` has ended (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


@pytest.fixture
def cli(paude_cli: PaudeCLI) -> Iterator[PaudeCLI]:
    """paude_cli, and no gate left holding a podman call when the test ends."""
    try:
        yield paude_cli
    finally:
        for pids in paude_cli.root.glob("gate-*/hit/pids"):
            for pid in map(int, pids.read_text().split()):
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)


def test_two_detached_starts_at_once_end_with_one_session(cli: PaudeCLI) -> None:
    name = random_name("twice")
    cli.started.append(name)
    first, second = (spawn(cli, "--detach", "--name", name) for _ in range(2))
    results = [first.finish(), second.finish()]
    assert [code for code, _ in results] == [0, 0], results
    started = [out for _, out in results if f"Started session {name}" in out]
    assert len(started) == 1, results  # the other found the session the first made
    assert_healthy(cli, name)
    assert_stops_clean(cli, name)


def test_a_second_start_waits_for_the_first_then_finds_its_session(cli: PaudeCLI) -> None:
    name = random_name("waits")
    cli.started.append(name)
    gate = Gate.make(cli.root, match=f"--name paude-{name}-proxy", when="after")
    first = spawn(cli, "--detach", "--name", name, gate=gate)
    gate.wait(alive=first.proc)
    second = spawn(cli, "--detach", "--name", name)
    wait_for("the second start to wait",
             lambda: "Waiting for another paude command" in second.stderr())
    gate.release()
    assert first.finish()[0] == 0
    code, out = second.finish()
    assert code == 0, out
    assert f"Started session {name}" not in out
    assert_healthy(cli, name)
    assert_stops_clean(cli, name)


def kill_at(gate: Gate, start: Running) -> None:
    """``kill -9`` the whole start (paude and its podman call) held at ``gate``."""
    paude_pid, gate_pid = gate.wait(alive=start.proc)
    os.killpg(start.proc.pid, signal.SIGKILL)
    for pid in (paude_pid, gate_pid):
        os.kill(pid, signal.SIGKILL) if not gone(pid) else None
    start.proc.wait(timeout=60)
    wait_for("the killed paude and its podman call to end",
             lambda: gone(paude_pid) and gone(gate_pid), seconds=60)


# Where paude is killed, and whether the podman call it was waiting on dies
# with it ("group": the terminal closed, Ctrl+\ of the whole job) or goes on
# by itself ("orphan": only paude's own pid got the signal).
KILL_POINTS = {
    "a network made": ("network create", "after", "group"),
    "proxy created, agent maybe not": ("--name paude-{name}-proxy", "after", "group"),
    "agent run still to come": ("--name paude-{name}-agent", "before", "group"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_during_a_start_then_paude_again_gives_one_healthy_session(
    cli: PaudeCLI, point: str
) -> None:
    name = random_name("killed")
    cli.started.append(name)
    match, when, _ = KILL_POINTS[point]
    gate = Gate.make(cli.root, match=match.format(name=name), when=when)
    kill_at(gate, spawn(cli, "--detach", "--name", name, gate=gate))
    made = what_exists(cli, name)
    assert made["networks"], made  # the start was under way
    cli.run("--detach", "--name", name)
    assert_healthy(cli, name)
    assert_stops_clean(cli, name)


@pytest.mark.parametrize("then", ["start", "stop"])
def test_kill_9_after_the_gateway_secret_then_paude_again_or_stop_leaves_no_secret(
    cli: PaudeCLI, then: str
) -> None:
    """Killed between ``podman secret create`` (the gateway's credential) and the
    gateway's container: ``paude`` again makes one healthy session with its
    gateway (podman 4.3 has no ``secret create --replace``: it once failed
    "secret name in use"), and ``paude stop`` removes the secret either way
    (it once said "Stopped" and left the API key in podman's store)."""
    name = random_name("secret")
    cli.started.append(name)
    cli.extra_env["ANTHROPIC_API_KEY"] = "sk-ant-api03-interrupt-test-key"  # a gateway
    gate = Gate.make(cli.root, match="secret create", when="after")
    kill_at(gate, spawn(cli, "--detach", "--name", name, gate=gate))
    made = what_exists(cli, name)
    assert made["secrets"] == [f"paude-{name}-gateway"] and not made["containers"], made
    if then == "start":
        cli.run("--detach", "--name", name)
        assert_healthy(cli, name, gateway=True)
    assert_stops_clean(cli, name)


def test_kill_9_of_paude_alone_while_its_podman_run_goes_on(cli: PaudeCLI) -> None:
    """paude dies, its ``podman run`` of the agent carries on and lands while
    the next ``paude`` is about to create the same container: the next one
    finds it instead of failing on "the container name is already in use"."""
    name = random_name("orphan")
    cli.started.append(name)
    agent_run = f"--name paude-{name}-agent"
    orphan_gate = Gate.make(cli.root, match=agent_run)
    start = spawn(cli, "--detach", "--name", name, gate=orphan_gate)
    paude_pid, orphan_pid = orphan_gate.wait(alive=start.proc)
    os.kill(paude_pid, signal.SIGKILL)  # paude only: its podman call lives on
    wait_for("the killed paude to end", lambda: gone(paude_pid), seconds=60)
    again_gate = Gate.make(cli.root, match=agent_run)
    again = spawn(cli, "--detach", "--name", name, gate=again_gate)
    again_gate.wait(alive=again.proc)  # it listed no agent and is about to create one
    orphan_gate.release()
    wait_for("the orphaned podman run to finish", lambda: gone(orphan_pid), seconds=120)
    assert f"paude-{name}-agent running" in what_exists(cli, name)["containers"]
    again_gate.release()  # its podman run now meets the orphan's container
    code, out = again.finish()
    assert code == 0, out
    assert "Traceback" not in out
    assert_healthy(cli, name)
    assert_stops_clean(cli, name)


def test_stop_during_a_start_ends_with_no_session(cli: PaudeCLI) -> None:
    name = random_name("stopped")
    cli.started.append(name)
    gate = Gate.make(cli.root, match=f"--name paude-{name}-proxy", when="after")
    start = spawn(cli, "--detach", "--name", name, gate=gate)
    gate.wait(alive=start.proc)
    assert what_exists(cli, name)["networks"]
    stop = spawn(cli, "stop", name)
    wait_for("the stop to wait for the start",
             lambda: "Waiting for another paude command" in stop.stderr())
    gate.release()
    assert start.finish()[0] == 0
    code, out = stop.finish()
    assert code == 0 and f"Stopped session {name}" in out, out
    assert what_exists(cli, name) == NOTHING


def test_two_starts_that_need_one_new_image_build_it_once(cli: PaudeCLI) -> None:
    """Two sessions start at once and both need an agent image not built yet:
    the first builds it (held at its ``podman build`` by a gate), the second
    says it waits for that build, then uses the image; one build in all."""
    names = [random_name("image-a"), random_name("image-b")]
    cli.started += names
    cli.configure({"image": {"setup_command": f"echo {random_name('tag')}"}})  # a new tag
    gate = Gate.make(cli.root, match="build")
    first = spawn(cli, "--detach", "--name", names[0], gate=gate)
    gate.wait(alive=first.proc)  # it holds the image's build lock, its build not begun

    def builds() -> list[str]:
        return [argv[argv.index("-t") + 1] for argv in gate.calls() if argv[:1] == ["build"]]

    second = spawn(cli, "--detach", "--name", names[1], gate=gate)
    waiting = "Waiting for another paude building image localhost/paude-agent:"
    wait_for("the second start to wait for the first's build (or to build too)",
             lambda: waiting in second.stderr() or len(builds()) > 1
             or second.proc.poll() is not None)
    gate.release()
    results = [first.finish(), second.finish()]
    assert [code for code, _ in results] == [0, 0], results
    agent = [tag for tag in builds() if tag.startswith("localhost/paude-agent:")]
    try:
        assert len(agent) == 1 and len(set(builds())) == len(builds()), builds()
        assert waiting in second.stderr(), results
        for name in names:
            assert f"Started session {name}" in " ".join(out for _, out in results)
            assert_healthy(cli, name)
            assert_stops_clean(cli, name)
    finally:
        cli.podman("rmi", *set(agent), check=False)  # a tag no other test uses


def test_kill_9_during_an_image_build_then_paude_again_builds_it_and_starts(
    cli: PaudeCLI,
) -> None:
    """The first start builds the agent image; paude and its build are killed in
    the middle of the build's RUN step. ``paude`` again builds the image whole
    and starts one healthy session, and no image with paude's labels is left
    without its tag (a half-built image)."""
    name = random_name("build")
    cli.started.append(name)
    token = random_name("step")
    # podman passes ftp_proxy into a build's RUN steps (--http-proxy): the first
    # build holds in its setup step, the second (without it) goes through.
    cli.configure({"image": {"setup_command":
                             f'echo {token}; if [ "$ftp_proxy" = hold ]; then '
                             f'echo held-{token}; exec sleep 900; fi'}})
    before = set(_paude_images(cli, dangling=True))
    cli.extra_env["ftp_proxy"] = "hold"
    try:
        start = spawn(cli, "--detach", "--name", name)
    finally:
        del cli.extra_env["ftp_proxy"]
    logs = cli.home / ".local" / "state" / "paude" / "logs"
    wait_for("the build to reach its setup step", lambda: start.proc.poll() is None and any(
        f"held-{token}" in log.read_text(errors="replace") for log in logs.glob("build-*.log")),
        seconds=600)
    os.killpg(start.proc.pid, signal.SIGKILL)  # paude and its podman build
    start.proc.wait(timeout=60)
    cli.run("--detach", "--name", name)
    assert_healthy(cli, name)
    assert set(_paude_images(cli, dangling=True)) <= before  # nothing half-built left
    assert_stops_clean(cli, name)


def _paude_images(cli: PaudeCLI, *, dangling: bool) -> list[str]:
    filters = ["--filter", "label=app.kubernetes.io/managed-by=paude"]
    if dangling:
        filters += ["--filter", "dangling=true"]
    return cli.podman("images", "-q", *filters).stdout.split()
