"""The CLI's help, completion and JSON shapes, through the real entry point."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import paude
from fakes import RecordingRunner, reply
from paude.cli import context, main, typer_command

SRC = Path(paude.__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"<[a-z][a-z_\[\], |]*>")


def command_paths() -> list[tuple[str, ...]]:
    """Return every command of the real app: (), ("sessions",), ..."""
    import paude.cli.blocked  # noqa: F401 - registers blocked and allow
    from paude.cli import commands  # noqa: F401 - registers the subcommands
    from paude.cli.app import app

    return [(), *((name,) for name in sorted(typer_command(app).commands))]


def help_of(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code in (0, None)
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "paude")
def test_every_help_has_no_type_placeholder_and_an_example(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(path, capsys)
    assert "Usage: paude" in text
    assert PLACEHOLDER.findall(text) == []
    assert re.search(r"Examples?: paude", text), text


def test_value_options_name_their_value(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of((), capsys)
    assert re.search(r"--workspace\s+-w\s+DIR", text)
    assert re.search(r"--allow-domain\s+DOMAIN", text)
    assert re.search(r"--yolo\s+Skip", text)  # a flag shows nothing between name and help
    assert "--install-completion" in text and "--show-completion" in text
    assert "[SESSION]" in help_of(("attach",), capsys)


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), **extra}


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("paude ses", "1", "sessions"),
    ("paude sync --st", "2", "--status"),
])
def test_shell_completion_is_typers_own(
    tmp_path: Path, words: str, cword: str, expected: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "paude"], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, check=False,
        env=cli_env(_PAUDE_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=cword),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected]


def test_show_completion_prints_a_bash_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "paude", "--show-completion"], capture_output=True, text=True,
        timeout=60, cwd=tmp_path, check=False, env=cli_env(SHELL="/bin/bash"),
    )
    assert done.returncode == 0, done.stderr
    assert "_paude_completion()" in done.stdout and "_PAUDE_COMPLETE=complete_bash" in done.stdout


CAPTURE = Path(__file__).parent / "captures" / "podman-ps-two-sessions.json"
SESSION_KEYS = {"name", "backend", "status", "workspace", "created_at", "network", "detail"}


def test_sessions_json_shape(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = RecordingRunner(reply(("podman", "ps"), CAPTURE.read_text()))
    monkeypatch.setattr(context, "make_runner", lambda g: fake)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PAUDE_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["sessions", "--json"])
    assert done.value.code in (0, None)
    listed: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert len(listed) == 2
    assert all(set(s) == SESSION_KEYS for s in listed)
    assert {s["backend"] for s in listed} == {"podman"}


def test_sync_status_json_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from paude.sync import ExecTransport, SyncSpec
    from paude.sync.daemon import SyncFiles
    from paude.sync.state import write_atomic

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PAUDE_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    spec = SyncSpec("demo", tmp_path, ExecTransport(("kubectl", "exec", "-i", "p", "--")))
    write_atomic(SyncFiles.of("demo").spec, json.dumps(spec.to_json()))
    with pytest.raises(SystemExit) as done:
        main(["sync", "demo", "--status", "--json"])
    assert done.value.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert sorted(data) == ["conflicts", "last_error", "last_pull", "last_push", "last_round",
                            "paths", "pending_local", "pid", "session", "state"]
    assert (data["session"], data["state"]) == ("demo", "stopped")
