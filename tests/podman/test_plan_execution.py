"""The podman plan is what runs: ``--dry-run`` prints exactly the steps a start executes.

The executor itself logs every step it runs (``PAUDE_STEP_LOG``), rendered as
``--dry-run`` renders the plan; the real podman does the work. The only
difference allowed is the creation timestamp label, which is the clock's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import PaudeCLI
from paude.plan import STEP_SEPARATOR

_CREATED = re.compile(r"paude\.io/created=\S+")


def _normalise(text: str) -> str:
    return _CREATED.sub("paude.io/created=<time>", text)


def _executed(log: Path) -> str:
    if not log.exists():
        return ""  # no step ran (the executor writes the log as it runs each one)
    parts = log.read_text(encoding="utf-8").split(STEP_SEPARATOR)
    assert parts[-1] == ""
    return "\n".join(parts[:-1])


def _dry_run_then_start(cli: PaudeCLI, *args: str) -> tuple[str, str]:
    """Return (printed by --dry-run, executed by the start that follows)."""
    printed = cli.run("--dry-run", *args).stdout
    log = cli.root / "steps.log"
    log.unlink(missing_ok=True)
    cli.extra_env["PAUDE_STEP_LOG"] = str(log)
    try:
        cli.start(*args)
    finally:
        del cli.extra_env["PAUDE_STEP_LOG"]
    return _normalise(printed), _normalise(_executed(log))


def _builds(text: str) -> list[str]:
    return re.findall(r"^podman build .* -t (\S+) ", text, flags=re.MULTILINE)


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_plain_session_and_its_restart(paude_cli: PaudeCLI) -> None:
    printed, executed = _dry_run_then_start(paude_cli)
    assert executed == printed
    assert [b.split(":")[0] for b in _builds(executed)] == ["localhost/paude-agent",
                                                            "localhost/paude-proxy"]
    assert executed.count("\npodman run -d ") == 2 and "podman network create" in executed
    name = paude_cli.started[-1]
    # A stopped agent: the plan (and the run) is to start it again, nothing else made.
    paude_cli.podman("stop", "-t", "0", f"paude-{name}-agent")
    printed, executed = _dry_run_then_start(paude_cli)
    assert executed == printed
    assert "\npodman start paude-" in executed and "\npodman run " not in executed
    assert "network create" not in executed
    # A running session: nothing at all.
    printed, executed = _dry_run_then_start(paude_cli)
    assert executed == printed == ""


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_unrestricted_session(paude_cli: PaudeCLI) -> None:
    printed, executed = _dry_run_then_start(paude_cli, "--allow-network")
    assert executed == printed
    assert [b.split(":")[0] for b in _builds(executed)] == ["localhost/paude-agent"]
    assert executed.count("\npodman run -d ") == 1 and "squid.conf" not in executed


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_custom_base_image(paude_cli: PaudeCLI) -> None:
    # The same image under another name: the build's layer cache still applies.
    base = "localhost/paude-test-base:plan"
    paude_cli.podman("tag", "docker.io/library/debian:bookworm-slim", base)
    paude_cli.configure({"image": {"base": base}})
    printed, executed = _dry_run_then_start(paude_cli)
    assert executed == printed
    assert f"FROM {base}" in executed


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_devcontainer_dockerfile_builds_all_three_images(paude_cli: PaudeCLI) -> None:
    dev = paude_cli.workspace / ".devcontainer"
    dev.mkdir()
    (dev / "devcontainer.json").write_text('{"build": {"dockerfile": "Dockerfile"}}')
    (dev / "Dockerfile").write_text("FROM docker.io/library/debian:bookworm-slim\n")
    paude_cli.configure({})
    printed, executed = _dry_run_then_start(paude_cli)
    assert executed == printed
    assert [b.split(":")[0] for b in _builds(executed)] == [
        "localhost/paude-user-base", "localhost/paude-agent", "localhost/paude-proxy"]
