"""Which command lines take the quick reattach, and which go to the full CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paude.cli.fastpath import reattach_target
from paude.naming import derive_session_name


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), **extra}


def test_bare_paude_and_attach_target_the_workspace_session(ws: Path, tmp_path: Path) -> None:
    assert reattach_target([], ws, env(tmp_path)) == derive_session_name(ws)
    assert reattach_target(["attach"], ws, env(tmp_path)) == derive_session_name(ws)
    assert reattach_target(["attach", "other-1"], ws, env(tmp_path)) == "other-1"


@pytest.mark.parametrize("argv", [
    ["--detach"], ["--yolo"], ["--allow-domain", "x.org"], ["sessions"], ["attach", "a", "b"],
    ["attach", "Bad;Name"], ["attach", ""], ["--", "--model", "opus"], ["exec", "--", "ls"],
])
def test_anything_else_goes_to_the_full_cli(ws: Path, tmp_path: Path, argv: list[str]) -> None:
    assert reattach_target(argv, ws, env(tmp_path)) is None


def test_other_backends_go_to_the_full_cli(ws: Path, tmp_path: Path) -> None:
    assert reattach_target([], ws, env(tmp_path, PAUDE_BACKEND="openshift")) is None
    (ws / "paude.json").write_text(json.dumps({"backend": {"type": "openshift"}}))
    assert reattach_target([], ws, env(tmp_path)) is None
    assert reattach_target([], ws, env(tmp_path, PAUDE_BACKEND="podman")) is not None


def test_user_config_backend_counts(ws: Path, tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "paude" / "paude.json"
    user.parent.mkdir(parents=True)
    user.write_text(json.dumps({"backend": {"type": "openshift"}}))
    assert reattach_target([], ws, env(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "xdg"))) is None


def test_a_broken_config_goes_to_the_full_cli_which_reports_it(ws: Path, tmp_path: Path) -> None:
    (ws / "paude.json").write_text("{broken")
    assert reattach_target([], ws, env(tmp_path)) is None
    (ws / "paude.json").write_text("[]")
    assert reattach_target([], ws, env(tmp_path)) is None


def test_the_quick_path_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = ("import sys, paude.cli, paude.cli.fastpath, paude.runner.terminal, "
            "paude.backends.podman.names; "
            "print(sorted(m for m in ('typer', 'rich', 'pydantic', 'lightkube', 'yaml', "
            "'dataclasses', 'logging', 'json', 'paude.runner.system') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
