"""The sandbox cannot reach back: attacks from inside the agent, real podman.

Rootful and rootless (the ``paude_cli`` fixture). The agent plants code in
the workspace's git metadata and rewrites its own paude.json; the host's
git and paude must run none of it, and a canary file proves it.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import subprocess
from pathlib import Path

from test_session import paude_command

from conftest import ROOTLESS_USER, PaudeCLI
from paude.naming import derive_session_name
from terminal import Terminal, wait_until

SQUID_CONF = "/etc/squid/paude/squid.conf"


def host(cli: PaudeCLI, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` on the host as the workspace's user (root, or the rootless user)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(cli.home), "LANG": "C.UTF-8"}
    if cli.mode == "rootless":
        argv = ("runuser", "-u", ROOTLESS_USER, "--", "env", "-i",
                *(f"{k}={v}" for k, v in env.items()), *argv)
    return subprocess.run(argv, cwd=cwd or cli.workspace, env=env, capture_output=True,
                          text=True, timeout=60, check=True)


def agent(cli: PaudeCLI, script: str) -> list[str]:
    """Run a shell script in the agent; return its output words."""
    return cli.run("exec", "--", "sh", "-c", script).stdout.split()


def proxy_conf(cli: PaudeCLI, name: str) -> str:
    return cli.podman("exec", f"paude-{name}-proxy", "cat", SQUID_CONF).stdout


def write_as_user(cli: PaudeCLI, path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if cli.mode == "rootless":
        user = pwd.getpwnam(ROOTLESS_USER)
        for p in (path.parent, path):
            os.chown(p, user.pw_uid, user.pw_gid)


PLANT = r"""
c="$1"
git config core.fsmonitor "touch $c" 2>/dev/null && echo config=WRITTEN || echo config=refused
printf '[core]\n\thooksPath = planted\n' >> .git/config 2>/dev/null \
    && echo append=WRITTEN || echo append=refused
printf '#!/bin/sh\ntouch %s\n' "$c" > .git/hooks/pre-commit 2>/dev/null \
    && echo hook=WRITTEN || echo hook=refused
mkdir -p .git/info && echo '* filter=spy' >> .git/info/attributes 2>/dev/null \
    && echo attributes=WRITTEN || echo attributes=refused
mv .git .git-old 2>/dev/null && echo replace-git=DONE || echo replace-git=refused
mkdir -p evil && cp -r .git/objects .git/refs .git/HEAD evil/ \
    && printf '[core]\n\tfsmonitor = touch %s\n' "$c" > evil/config
echo ../evil > .git/commondir 2>/dev/null && echo commondir=WRITTEN || echo commondir=refused
echo work > work.txt && git add work.txt && git commit -q -m agent-work && echo commit=ok
git branch agent-branch && echo branch=ok
echo more >> work.txt && git stash -q && echo stash=ok
"""


def test_agent_cannot_plant_code_that_host_git_runs(paude_cli: PaudeCLI) -> None:
    cli = paude_cli
    host(cli, "git", "init", "-q")
    host(cli, "git", "commit", "-q", "--allow-empty", "-m", "host-start")
    canary = cli.root / "canary"
    cli.start()
    out = agent(cli, PLANT.replace('"$1"', f"'{canary}'"))
    assert out == ["config=refused", "append=refused", "hook=refused", "attributes=refused",
                   "replace-git=refused", "commondir=refused", "commit=ok", "branch=ok",
                   "stash=ok"]
    host(cli, "git", "status")
    host(cli, "git", "commit", "-q", "--allow-empty", "-m", "host-after")
    assert not canary.exists(), "a command the agent planted ran on the host"
    log = host(cli, "git", "log", "--format=%s").stdout.split()
    assert log == ["host-after", "agent-work", "host-start"]
    assert host(cli, "git", "branch", "--list", "agent-branch").stdout.strip()
    assert host(cli, "git", "stash", "list").stdout.strip()


def test_the_canary_would_catch_each_plant_unguarded(paude_cli: PaudeCLI) -> None:
    """The probe can fail: the same plants, made on the host, run on its git status."""
    cli = paude_cli
    for plant in PLANT_UNGUARDED:
        probe = cli.workspace / plant
        probe.mkdir()
        if cli.mode == "rootless":
            user = pwd.getpwnam(ROOTLESS_USER)
            os.chown(probe, user.pw_uid, user.pw_gid)
        canary = cli.root / f"canary-{plant}"
        host(cli, "git", "init", "-q", cwd=probe)
        host(cli, "sh", "-c", PLANT_UNGUARDED[plant], "sh", str(canary), cwd=probe)
        host(cli, "git", "status", cwd=probe)
        assert canary.exists(), plant


RISKY = {"core.hooksPath": ".githooks", "core.fsmonitor": "./fsmon.sh",
         "core.sshCommand": "ssh -F planted", "filter.spy.clean": "./clean.sh",
         "diff.spy.textconv": "./conv.sh", "merge.spy.driver": "./merge.sh"}


def test_risky_git_settings_are_named_at_start_and_the_hooks_path_is_read_only(
    paude_cli: PaudeCLI,
) -> None:
    cli = paude_cli
    host(cli, "git", "init", "-q")
    for key, value in RISKY.items():
        host(cli, "git", "config", key, value)
    cli.started.append(derive_session_name(cli.workspace))
    started = cli.run("--detach")
    warning = " ".join(started.stderr.split())  # rich wraps it
    assert "the workspace's git config makes git on this host run commands:" in warning
    for key, value in RISKY.items():
        assert f"{key.lower()}={value}" in warning, (key, started.stderr)
    canary = cli.root / "canary"
    out = agent(cli, f"""
        mv .githooks old 2>/dev/null && mv old .githooks && echo move=DONE || echo move=refused
        mkdir -p .githooks && printf '#!/bin/sh\\ntouch {canary}\\n' > .githooks/pre-commit \\
            && chmod +x .githooks/pre-commit && echo hook=WRITTEN || echo hook=refused""")
    assert out == ["move=refused", "hook=refused"]
    host(cli, "git", "-c", "core.fsmonitor=false", "commit", "-q", "--allow-empty", "-m", "x")
    assert not canary.exists(), "a hook the agent planted in core.hooksPath ran on the host"


PLANT_UNGUARDED = {
    "fsmonitor": 'git config core.fsmonitor "touch $1"',
    "gitfile": r"""git init -q evil && git -C evil config core.fsmonitor "touch $1" \
        && rm -rf .git && printf 'gitdir: evil/.git\n' > .git""",
    "commondir": r"""mkdir -p evil && cp -r .git/objects .git/refs .git/HEAD evil/ \
        && printf '[core]\n\tfsmonitor = touch %s\n' "$1" > evil/config \
        && echo ../evil > .git/commondir""",
}


def test_a_dot_git_file_cannot_be_repointed(paude_cli: PaudeCLI) -> None:
    """A linked worktree's ``.git`` file: rewritten, host git would read the agent's config."""
    cli = paude_cli
    main = cli.root / "main"
    host(cli, "git", "init", "-q", str(main), cwd=cli.root)
    host(cli, "git", "commit", "-q", "--allow-empty", "-m", "main", cwd=main)
    host(cli, "git", "worktree", "add", "-q", str(cli.workspace), cwd=main)
    assert (cli.workspace / ".git").is_file()
    canary = cli.root / "canary"
    cli.start()
    out = agent(cli, f"""
        git init -q evil && git -C evil config core.fsmonitor "touch {canary}"
        printf 'gitdir: evil/.git\\n' > .git 2>/dev/null && echo gitfile=WRITTEN \\
            || echo gitfile=refused
        mv .git old 2>/dev/null && echo move=DONE || echo move=refused""")
    assert out == ["gitfile=refused", "move=refused"]
    host(cli, "git", "status")
    assert not canary.exists(), "a git directory the agent made was used by the host's git"


def test_agent_written_paude_json_waits_for_paude_trust(paude_cli: PaudeCLI) -> None:
    cli = paude_cli
    name = cli.start()
    agent(cli, """printf '{"allowed_domains": [".attacker.example"]}' > paude.json""")
    assert ".attacker.example" not in proxy_conf(cli, name)
    refused = cli.run("--detach", check=False)  # no terminal: nobody can say yes
    assert refused.returncode == 2, refused.stderr
    assert "allowed_domains adds .attacker.example" in refused.stderr
    assert "paude trust" in refused.stderr
    assert ".attacker.example" not in proxy_conf(cli, name)
    cli.run("trust")
    cli.run("--detach")
    assert ".attacker.example" in proxy_conf(cli, name)
    # The same for a setup command: nothing is built until it is approved.
    mark = secrets.token_hex(6)  # a setup command no image has run yet
    setup = {"allowed_domains": [".attacker.example"],
             "image": {"setup_command": f"echo {mark} > /opt/setup-mark"}}
    agent(cli, f"printf '%s' '{json.dumps(setup)}' > paude.json")
    refused = cli.run("--detach", check=False)
    assert refused.returncode == 2, refused.stderr
    assert f"image.setup_command = 'echo {mark} > /opt/setup-mark'" in refused.stderr
    # A start from scratch would build it: still refused, and nothing is built.
    cli.run("stop", name)
    refused = cli.run("--detach", check=False)
    assert refused.returncode == 2 and "image.setup_command" in refused.stderr, refused.stderr
    planned = cli.run("--dry-run").stdout  # the image that config would build
    tags = set(re.findall(r"localhost/paude-agent:[0-9a-f]{12}", planned))
    assert len(tags) == 1
    tag = tags.pop()
    assert cli.podman("image", "exists", tag, check=False).returncode == 1
    cli.run("trust")
    assert cli.start() == name
    assert agent(cli, "cat /opt/setup-mark") == [mark]  # built with it, and running it
    assert cli.podman("image", "exists", tag, check=False).returncode == 0
    cli.podman("rm", "-f", "-t", "0", f"paude-{name}-agent")
    cli.podman("rmi", tag, check=False)  # one image per run: do not keep them


def test_a_narrower_allowlist_applies_without_asking(paude_cli: PaudeCLI) -> None:
    cli = paude_cli
    cli.configure({"allowed_domains": [".kept.example", ".dropped.example"]})
    name = cli.start()
    assert ".dropped.example" in proxy_conf(cli, name)
    write_as_user(cli, cli.workspace / "paude.json",
                  json.dumps({"allowed_domains": [".kept.example"]}))
    done = cli.run("--detach")  # no terminal, no paude trust
    assert "only narrows the approved allowlist: applied" in done.stderr
    conf = proxy_conf(cli, name)
    assert ".kept.example" in conf and ".dropped.example" not in conf


def test_cloned_paude_json_needs_approval_on_first_use(paude_cli: PaudeCLI) -> None:
    cli = paude_cli
    write_as_user(cli, cli.workspace / "paude.json",
                  json.dumps({"allowed_domains": [".cloned.example"]}))
    write_as_user(cli, cli.workspace / ".devcontainer" / "devcontainer.json",
                  '{"name": "cloned"}')
    name = derive_session_name(cli.workspace)
    cli.started.append(name)  # removed afterwards, should this start not be refused
    refused = cli.run("--detach", check=False)
    assert refused.returncode == 2, refused.stderr
    assert "first use of this workspace's configuration" in refused.stderr
    assert "allowed_domains adds .cloned.example" in refused.stderr
    assert ".devcontainer/devcontainer.json: name = 'cloned'" in refused.stderr
    label = f"label=paude.io/session={name}"
    assert cli.podman("ps", "-aq", "--filter", label).stdout.strip() == ""
    assert cli.podman("network", "exists", f"paude-{name}", check=False).returncode == 1
    cli.run("trust")
    assert cli.start() == name
    assert ".cloned.example" in proxy_conf(cli, name)
    out = agent(cli, "echo '{}' > paude.json 2>/dev/null && echo json=WRITTEN || echo json=refused;"
                     "touch .devcontainer/x 2>/dev/null && echo dev=WRITTEN || echo dev=refused;"
                     "echo '{}' > .devcontainer/devcontainer.json 2>/dev/null"
                     " && echo devjson=WRITTEN || echo devjson=refused")
    assert out == ["json=refused", "dev=refused", "devjson=refused"]


def nothing_labelled(cli: PaudeCLI, workspace: Path) -> bool:
    """Answer whether no container or network of ``workspace``'s session exists."""
    label = f"label=paude.io/session={derive_session_name(workspace)}"
    return cli.podman("ps", "-aq", "--filter", label).stdout.strip() == "" and cli.podman(
        "network", "ls", "-q", "--filter", label).stdout.strip() == ""


def test_home_root_and_a_ca_symlink_to_shadow_are_refused(paude_cli: PaudeCLI) -> None:
    cli = paude_cli
    write_as_user(cli, cli.home / ".gnupg" / "pubring.kbx", "keys\n")
    refusals = {cli.home: "it is your home directory", Path("/"): "it is the root directory",
                cli.root: "it contains ~/.ssh", cli.home / ".ssh": "it is inside ~/.ssh",
                cli.home / ".gnupg": "it is inside ~/.gnupg",
                cli.home / ".config": "it contains ~/.config/gcloud",
                cli.home / ".config" / "gh": "it is inside ~/.config/gh"}
    for workspace, reason in refusals.items():
        before = sorted(p.name for p in workspace.iterdir()) if workspace != Path("/") else []
        cli.started.append(derive_session_name(workspace))  # should it not be refused
        refused = cli.run("-w", str(workspace), "--detach", check=False)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(f"Error: refusing workspace {workspace}: {reason}, ")
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert nothing_labelled(cli, workspace), workspace
        if workspace != Path("/"):
            assert sorted(p.name for p in workspace.iterdir()) == before
    assert not (cli.home / ".local" / "state" / "paude").exists()  # no state, no approval
    (cli.workspace / "ca.pem").symlink_to("/etc/shadow")
    cli.configure({"extra_ca_certificates": ["ca.pem"]})  # approved, yet refused:
    cli.started.append(derive_session_name(cli.workspace))
    refused = cli.run("--detach", check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "resolves to /etc/shadow, outside" in refused.stderr
    assert nothing_labelled(cli, cli.workspace)
    assert not (cli.home / ".local" / "state" / "paude" / "sessions").exists()


def test_interactive_start_asks_and_a_yes_applies(paude_cli: PaudeCLI, terminal: Terminal) -> None:
    cli = paude_cli
    write_as_user(cli, cli.workspace / "paude.json",
                  json.dumps({"allowed_domains": [".asked.example"]}))
    name = derive_session_name(cli.workspace)
    cli.started.append(name)  # removed afterwards, whatever this test sees
    command = paude_command(cli).replace(" -m paude", " -m paude --detach")
    question = "Trust this configuration? [y/N]"
    terminal.type(command, "Enter")
    wait_until("the [y/N] question", lambda: question in terminal.screen())
    terminal.type("", "Enter")  # no answer is a no
    wait_until("the refusal", lambda: "is not approved" in terminal.screen(),
               shown=terminal.screen)
    assert nothing_labelled(cli, cli.workspace)
    terminal.type("clear", "Enter")
    wait_until("a clear screen", lambda: question not in terminal.screen())
    terminal.type(command, "Enter")
    wait_until("the [y/N] question", lambda: question in terminal.screen())
    assert "allowed_domains adds .asked.example" in terminal.screen()
    terminal.type("y", "Enter")
    wait_until("the session start", lambda: "Attach with: paude attach" in terminal.screen(),
               seconds=120)
    assert ".asked.example" in proxy_conf(cli, name)
    assert "already trusted" in cli.run("trust").stderr
