"""A podman session end to end, as a person uses it: start, attach, detach,
reattach, list, stop. Rootful and rootless (the ``paude_cli`` fixture)."""

from __future__ import annotations

import json
import shlex

from conftest import PaudeCLI
from terminal import Terminal, wait_until

CLAUDE_VERSION = "2.1.332"


def tmux_server_pid(cli: PaudeCLI) -> str:
    """Return the tmux server's pid and the agent window's pid, as one string."""
    fmt = "#{pid} #{pane_pid}"
    return cli.run("exec", "--", "tmux", "display-message", "-p", "-t", "paude", fmt).stdout.strip()


def paude_command(cli: PaudeCLI) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in cli.env().items())
    return f"cd {shlex.quote(str(cli.workspace))} && env {env} {shlex.join(cli.argv())}"


def test_exec_runs_claude_inside_the_sandbox(paude_cli: PaudeCLI) -> None:
    paude_cli.start()
    out = paude_cli.run("exec", "--", "claude", "--version").stdout
    assert f"{CLAUDE_VERSION} (Claude Code)" in out


def test_exec_passes_stdout_stderr_and_exit_code(paude_cli: PaudeCLI) -> None:
    paude_cli.start()
    proc = paude_cli.run("exec", "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                         check=False)
    assert (proc.returncode, proc.stdout, proc.stderr.strip()) == (7, "out\n", "err")


def test_exec_in_a_stopped_or_missing_session_is_one_error_line(paude_cli: PaudeCLI) -> None:
    # The quick path hands podman's own refusal to the full CLI, which explains it.
    name = paude_cli.start()
    paude_cli.podman("stop", "-t", "0", f"paude-{name}-agent")
    stopped = paude_cli.run("exec", "--", "true", check=False)
    assert stopped.returncode == 1, stopped
    # The line says why it stopped (here: podman stop; a timeout says "idle 4h").
    first = stopped.stderr.splitlines()[0]
    assert first == f"Error: session {name} is stopped: the agent container is exited", first
    missing = paude_cli.run("exec", "nosuch-1", "--", "true", check=False)
    assert missing.returncode == 1, missing
    assert missing.stderr.splitlines()[0] == "Error: no session named 'nosuch-1'", missing.stderr
    assert "podman" not in stopped.stderr + missing.stderr


def test_attach_detach_and_reattach_to_the_same_session(
    paude_cli: PaudeCLI, terminal: Terminal
) -> None:
    name = paude_cli.start()
    pid_before = tmux_server_pid(paude_cli)
    terminal.type(paude_command(paude_cli), "Enter")
    wait_until("the agent's screen", lambda: "Claude Code" in terminal.screen(), seconds=60)
    assert f"paude: {name}" in terminal.screen(), terminal.screen()  # our status line
    terminal.type("", "C-b", "d")
    wait_until("detach", lambda: "[detached" in terminal.screen())
    terminal.type("clear", "Enter")
    terminal.type(paude_command(paude_cli), "Enter")
    wait_until("the agent's screen again", lambda: "Claude Code" in terminal.screen(),
               seconds=60)
    assert tmux_server_pid(paude_cli) == pid_before


def test_sessions_json_and_stop_leave_nothing_behind(paude_cli: PaudeCLI) -> None:
    name = paude_cli.start()
    listed = json.loads(paude_cli.run("sessions", "--json").stdout)
    mine = next(s for s in listed if s["name"] == name)
    assert mine["workspace"] == str(paude_cli.workspace)
    assert mine["backend"] == "podman"
    assert mine["status"] == "running"
    assert mine["network"] == "restricted"
    assert mine["created_at"].startswith("20")
    paude_cli.run("stop", name)
    label = f"label=paude.io/session={name}"
    assert paude_cli.podman("ps", "-aq", "--filter", label).stdout.strip() == ""
    assert paude_cli.podman("network", "ls", "-q", "--filter", label).stdout.strip() == ""
    assert paude_cli.podman("volume", "ls", "-q", "--filter", label).stdout.strip() == ""
    assert paude_cli.podman("network", "exists", f"paude-{name}", check=False).returncode == 1
    gone = paude_cli.run("stop", name, check=False)
    assert gone.returncode == 1 and f"no session named '{name}'" in gone.stderr


def test_credentials_reach_the_agent_read_only_and_secrets_do_not(paude_cli: PaudeCLI) -> None:
    paude_cli.start()
    script = r"""
    set -u
    cat ~/.gitconfig | grep -q 'Paude Test' && echo gitconfig=present
    test -e ~/.config/gcloud && echo gcloud=LEAKED || echo gcloud=absent
    touch ~/.gitconfig 2>/dev/null && echo gitconfig=WRITABLE || echo gitconfig=read-only
    test -f ~/.claude/settings.json && echo claude=copied
    echo changed > ~/.claude/settings.json && echo claude-copy=writable
    test -f ~/.claude.json && echo claude.json=copied
    test -e ~/.ssh && echo ssh=LEAKED || echo ssh=absent
    test -e ~/.config/gh && echo gh=LEAKED || echo gh=absent
    grep -rl 'PRIVATE KEY THAT MUST NOT LEAK\|gho_LEAK' / 2>/dev/null \
        --exclude-dir=proc --exclude-dir=sys && echo secret=LEAKED || echo secret=absent
    """
    out = paude_cli.run("exec", "--", "sh", "-c", script).stdout.split()
    assert out == ["gitconfig=present", "gcloud=absent", "gitconfig=read-only",
                   "claude=copied", "claude-copy=writable",
                   "claude.json=copied", "ssh=absent", "gh=absent", "secret=absent"]
    # The agent's copy changed; the host's settings did not.
    assert (paude_cli.home / ".claude" / "settings.json").read_text() == '{"theme": "dark"}'


def test_workspace_files_belong_to_the_host_user(paude_cli: PaudeCLI) -> None:
    paude_cli.start()
    paude_cli.run("exec", "--", "sh", "-c", "echo hello > made-by-agent.txt")
    made = paude_cli.workspace / "made-by-agent.txt"
    assert made.read_text() == "hello\n"
    assert made.stat().st_uid == paude_cli.workspace.stat().st_uid
