"""Idle and max timeouts and resource limits of a real podman session.

The agent container's entrypoint enforces the timeouts itself, so they hold
with no paude process and no client running; it stops the container with an
exit code that ``paude sessions`` turns into the reason.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from conftest import PaudeCLI
from terminal import Terminal, wait_until

SMALL = {"requests": {"cpu": "250m", "memory": "128Mi"},
         "limits": {"cpu": "1", "memory": "768Mi", "pids": 512}}


def session(cli: PaudeCLI, name: str) -> dict[str, Any]:
    listed = json.loads(cli.run("sessions", "--json").stdout)
    return dict(next(s for s in listed if s["name"] == name))


def wait_stopped(cli: PaudeCLI, name: str, *, seconds: float = 180) -> dict[str, Any]:
    wait_until(f"session {name} to stop by itself",
               lambda: session(cli, name)["status"] == "stopped", seconds=seconds,
               shown=lambda: cli.run("sessions").stdout)
    return session(cli, name)


def paude_command(cli: PaudeCLI) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in cli.env().items())
    return f"cd {shlex.quote(str(cli.workspace))} && env {env} {shlex.join(cli.argv())}"


def test_idle_timeout_stops_a_detached_session_and_paude_resumes_it(paude_cli: PaudeCLI) -> None:
    paude_cli.configure({"backend": {"timeout": {"idle": "20s"}}})
    (paude_cli.workspace / "agent.txt").write_text("agent-work\n")  # the bind-mounted tree
    name = paude_cli.start()
    stopped = wait_stopped(paude_cli, name)
    assert stopped["detail"] == "idle 20s"
    paude_cli.extra_env["COLUMNS"] = "300"  # the table, not cut to fit
    row = next(line for line in paude_cli.run("sessions").stdout.splitlines()
               if line.startswith(name))
    assert "stopped (idle 20s)" in row
    assert (paude_cli.workspace / "agent.txt").read_text() == "agent-work\n"
    refused = paude_cli.run("attach", name, check=False)
    assert refused.returncode == 1 and "is stopped: idle 20s" in refused.stderr
    assert paude_cli.start() == name  # `paude` in the workspace: the same session again
    assert session(paude_cli, name)["status"] == "running"
    out = paude_cli.run("exec", "--", "cat", "agent.txt").stdout
    assert out == "agent-work\n"


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_an_attached_client_keeps_idle_off_and_max_still_stops(
    paude_cli: PaudeCLI, terminal: Terminal
) -> None:
    # Idle 10s, max 60s: attached for six idle periods without an idle stop,
    # then the max stop, which holds whether or not a client is attached.
    # `paude` in the terminal starts the session and attaches at once.
    paude_cli.configure({"backend": {"timeout": {"idle": "10s", "max": "60s"}}})
    terminal.type(paude_command(paude_cli), "Enter")
    wait_until("the agent's screen", lambda: "Claude Code" in terminal.screen(), seconds=300,
               shown=terminal.screen)
    name = next(s["name"] for s in json.loads(paude_cli.run("sessions", "--json").stdout)
                if s["workspace"] == str(paude_cli.workspace))
    paude_cli.started.append(name)
    stopped = wait_stopped(paude_cli, name)
    assert stopped["detail"] == "max 60s"
    terminal.type("echo attach-ended", "Enter")  # typed into the shell once paude returns
    wait_until("the attached paude to return to the shell",
               lambda: "\nattach-ended" in terminal.screen(), shown=terminal.screen)
    agent = f"paude-{name}-agent"
    first = json.loads(paude_cli.podman("inspect", agent).stdout)[0]["State"]["StartedAt"]
    paude_cli.start()
    # Started again, and with no client now, its idle timeout holds again.
    again = wait_stopped(paude_cli, name)
    assert again["detail"] == "idle 10s"
    state = json.loads(paude_cli.podman("inspect", agent).stdout)[0]["State"]
    assert state["StartedAt"] != first


def _cgroup_v1_rootless(cli: PaudeCLI) -> bool:
    info = json.loads(cli.podman("info", "--format", "json").stdout)
    return bool(info["host"]["security"]["rootless"]) and info["host"]["cgroupVersion"] == "v1"


def test_resource_limits_reach_podman(paude_cli: PaudeCLI) -> None:
    paude_cli.configure({"backend": {"resources": SMALL}})
    started = paude_cli.run("--detach")
    name = next(s["name"] for s in json.loads(paude_cli.run("sessions", "--json").stdout)
                if s["workspace"] == str(paude_cli.workspace))
    paude_cli.started.append(name)
    agent = json.loads(paude_cli.podman("inspect", f"paude-{name}-agent").stdout)[0]
    if _cgroup_v1_rootless(paude_cli):
        # podman cannot apply them there, and paude says so instead of pretending.
        assert "resource limits are ignored: rootless podman" in started.stderr
        return
    host = agent["HostConfig"]
    assert host["Memory"] == 768 * 2**20
    assert host["MemorySwap"] == 768 * 2**20  # no swap beyond the limit
    assert host["MemoryReservation"] == 128 * 2**20
    assert host["NanoCpus"] == 10**9
    assert host["CpuShares"] == 256
    assert host["PidsLimit"] == 512
    proxy = json.loads(paude_cli.podman("inspect", f"paude-{name}-proxy").stdout)[0]
    assert proxy["HostConfig"]["Memory"] == 256 * 2**20  # the proxy's own defaults


HOG = "#!/bin/sh\n# Allocates without bound: tail keeps a line that never ends.\n" \
      "head -c 4G /dev/zero | tail >/dev/null\n"


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_an_agent_past_its_memory_limit_is_killed_and_the_session_says_oom(
    paude_cli: PaudeCLI
) -> None:
    paude_cli.configure({"backend": {"resources": SMALL}})
    name = paude_cli.start()
    # The agent window runs `claude` from PATH: here one that only allocates.
    fake = paude_cli.workspace / "fake-agent"
    fake.mkdir()
    (fake / "claude").write_text(HOG)
    (fake / "claude").chmod(0o755)
    path = f"{fake}:/usr/local/bin:/usr/bin:/bin"
    paude_cli.run("exec", "--", "tmux", "respawn-window", "-k", "-t", "paude",
                  "env", "PAUDE_AGENT_WINDOW=1", f"PATH={path}", "paude-entrypoint")
    stopped = wait_stopped(paude_cli, name)
    assert stopped["detail"] == "oom"
    agent = json.loads(paude_cli.podman("inspect", f"paude-{name}-agent").stdout)[0]
    assert agent["State"]["ExitCode"] == 82
