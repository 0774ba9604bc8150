"""Which command lines take the quick reattach, and which go to the full CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paude.cli.fastpath import exec_target, reattach_target, stop_target
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
    ["attach", "Bad;Name"], ["attach", ""], ["attach", "--help"], ["attach", "-h"],
    ["--", "--model", "opus"], ["exec", "--", "ls"],
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


def test_exec_target_reads_the_session_and_the_command(ws: Path, tmp_path: Path) -> None:
    own = derive_session_name(ws)
    assert exec_target(["exec", "--", "ls", "-l"], ws, env(tmp_path)) == (own, ["ls", "-l"])
    assert exec_target(["exec", "s-1", "--", "sh", "-c", "a -- b"], ws, env(tmp_path)) == (
        "s-1", ["sh", "-c", "a -- b"])


@pytest.mark.parametrize("argv", [
    ["exec"], ["exec", "--"], ["exec", "s-1", "--"], ["exec", "ls"], ["exec", "s-1", "ls"],
    ["exec", "Bad;Name", "--", "ls"], ["exec", "--backend", "podman", "--", "ls"],
    ["exec", "--help"], ["attach", "--", "ls"],
])
def test_other_exec_lines_go_to_the_full_cli(ws: Path, tmp_path: Path, argv: list[str]) -> None:
    assert exec_target(argv, ws, env(tmp_path)) is None


def test_exec_on_another_backend_goes_to_the_full_cli(ws: Path, tmp_path: Path) -> None:
    assert exec_target(["exec", "--", "ls"], ws, env(tmp_path, PAUDE_BACKEND="openshift")) is None


HEAVY = ("typer", "rich", "pydantic", "lightkube", "yaml", "dataclasses", "logging", "json",
         "paude.runner.system", "paude.backends.base")

# Runs paude's real entry point; at exit it reports which heavy modules got loaded.
_ENTRY = """
import atexit, sys
path = sys.argv[1]
def report():
    with open(path, "w") as out:
        out.write(" ".join(m for m in {heavy!r} if m in sys.modules))
atexit.register(report)
sys.argv = ["paude", *sys.argv[2:]]
from paude.cli import main
main()
"""

# A stand-in podman: records its argv, answers `ps` with no containers,
# and otherwise behaves as told by FAKE_PODMAN_MODE.
_FAKE_PODMAN = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_PODMAN_LOG"
case "$FAKE_PODMAN_MODE/$1/$2" in
  stop/secret/inspect|secret/secret/inspect) echo '[{"Spec": {"Labels":
    {"app.kubernetes.io/managed-by": "paude", "paude.io/session": "s-1"}}}]'; exit 0;;
  */secret/inspect) echo '[]'; echo 'Error: no secret with name or id "x": no such secret' >&2
    exit 125;;
  */secret/rm) exit 0;;
esac
case "$FAKE_PODMAN_MODE/$1/$4" in
  stop/ps/*) echo '[{"Names": ["paude-s-1-agent"]}, {"Names": ["paude-s-1-proxy"]}]'; exit 0;;
  stop/network/*) echo paude-s-1; exit 0;;
  stop/rm/*) exit 0;;
  */ps/json) echo '[]'; exit 0;;
  */ps/*|*/network/*) exit 0;;
esac
if [ "$FAKE_PODMAN_MODE" = gone ]; then
  echo 'Error: no container with name or ID "x" found: no such container' >&2; exit 125
fi
echo out; echo 'Error: the command said this' >&2; echo err2 >&2; exit 7
"""


def _run_paude(tmp_path: Path, ws: Path, mode: str, *args: str) -> tuple[
        subprocess.CompletedProcess[str], list[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "podman"
    fake.write_text(_FAKE_PODMAN)
    fake.chmod(0o755)
    log, report = tmp_path / "podman.log", tmp_path / "modules"
    run_env = {**env(tmp_path), "PATH": f"{bin_dir}:{os.environ['PATH']}",
               "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
               "FAKE_PODMAN_LOG": str(log), "FAKE_PODMAN_MODE": mode}
    proc = subprocess.run([sys.executable, "-c", _ENTRY.format(heavy=HEAVY), str(report), *args],
                          cwd=ws, env=run_env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert report.exists(), proc.stderr
    return proc, log.read_text().splitlines(), report.read_text().split()


def test_paude_exec_takes_the_quick_path(ws: Path, tmp_path: Path) -> None:
    proc, calls, loaded = _run_paude(tmp_path, ws, "ok", "exec", "--", "sh", "-c", "x")
    assert (proc.returncode, proc.stdout) == (7, "out\n")
    # the command's own stderr passes through whole, even a first line like podman's
    assert proc.stderr == "Error: the command said this\nerr2\n"
    assert calls == [f"exec -i paude-{derive_session_name(ws)}-agent sh -c x"]
    assert loaded == []


def test_exec_in_a_missing_session_is_explained_by_the_full_cli(
        ws: Path, tmp_path: Path) -> None:
    proc, calls, loaded = _run_paude(tmp_path, ws, "gone", "exec", "s-1", "--", "true")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == "Error: no session named 's-1'"
    assert "no such container" not in proc.stderr
    assert calls[0] == "exec -i paude-s-1-agent true"
    assert calls[1].startswith("ps ") and len(calls) == 2  # looked up once, never ran again
    assert "typer" in loaded


def test_stop_target_reads_the_session(ws: Path, tmp_path: Path) -> None:
    assert stop_target(["stop"], ws, env(tmp_path)) == derive_session_name(ws)
    assert stop_target(["stop", "s-1"], ws, env(tmp_path)) == "s-1"
    for argv in (["stop", "--force"], ["stop", "s-1", "--yes"], ["stop", "Bad;"], ["stopx"]):
        assert stop_target(argv, ws, env(tmp_path)) is None
    assert stop_target(["stop"], ws, env(tmp_path, PAUDE_BACKEND="openshift")) is None


LABELS = ("--filter label=app.kubernetes.io/managed-by=paude "
          "--filter label=paude.io/session=s-1")


def test_paude_stop_takes_the_quick_path(ws: Path, tmp_path: Path) -> None:
    proc, calls, loaded = _run_paude(tmp_path, ws, "stop", "stop", "s-1")
    assert (proc.returncode, proc.stderr) == (0, "Stopped session s-1\n")
    assert calls[3:] == ["rm -f -t 0 --ignore paude-s-1-agent paude-s-1-proxy",
                         "network rm -f -t 0 paude-s-1", "secret rm paude-s-1-gateway"]
    assert sorted(calls[:3]) == ["network ls --format {{.Name}} " + LABELS,
                                 "ps -a --format json " + LABELS,
                                 "secret inspect paude-s-1-gateway"]  # the three listings
    assert [m for m in loaded if m in ("typer", "rich", "pydantic")] == []


def test_stop_removes_a_secret_left_without_its_session(ws: Path, tmp_path: Path) -> None:
    """A start killed after creating the gateway's secret, before anything else."""
    proc, calls, _ = _run_paude(tmp_path, ws, "secret", "stop", "s-1")
    assert (proc.returncode, proc.stderr) == (0, "Stopped session s-1\n")
    assert calls[3:] == ["secret rm paude-s-1-gateway"]


def test_stop_of_a_missing_session_is_explained_by_the_full_cli(
        ws: Path, tmp_path: Path) -> None:
    proc, calls, loaded = _run_paude(tmp_path, ws, "gone", "stop", "s-1")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == "Error: no session named 's-1'"
    assert not [c for c in calls if c.startswith("rm") or c.startswith("network rm")]
    assert "typer" in loaded
