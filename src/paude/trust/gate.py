"""The one check a workspace passes before a session is planned or created.

:func:`clear_workspace` refuses a workspace that holds host secrets, makes
sure its configuration is approved (or asks), and finds the git metadata the
agent must not change. The CLI calls it once, before anything is created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paude.config import LoadedConfig
from paude.runner import Runner
from paude.trust.approval import (
    UntrustedConfigError,
    Verdict,
    evaluate,
    load_record,
    name_files,
    save_record,
)
from paude.trust.git import (
    config_file_of,
    find_guard_mounts,
    find_risky_settings,
    git_dir_of,
    run_read_config,
)
from paude.trust.paths import GuardMount

Ask = Callable[[Verdict], bool]
_TRUE = {"true", "yes", "on", "1"}


@dataclass(frozen=True)
class Clearance:
    """What a cleared workspace brings: mounts to guard, warnings and notes to print."""

    guard_mounts: tuple[GuardMount, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def approve_command(workspace: Path, cwd: Path) -> str:
    """Return the command that approves ``workspace``'s configuration."""
    return "paude trust" if workspace == cwd else f"paude -w {workspace} trust"


def _check_trust(
    workspace: Path, loaded: LoadedConfig, *, state: Path, ask: Ask | None, cwd: Path
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (warnings, notes) of the trust check, or raise when it is refused."""
    files = name_files(workspace, loaded.workspace_files)
    verdict = evaluate(files, load_record(state, workspace))
    if verdict.narrowed:
        return (), ("The workspace's paude.json only narrows the approved allowlist: applied.",)
    if verdict.trusted:
        return (), ()
    command = approve_command(workspace, cwd)
    what = "; ".join(verdict.reasons)
    if ask is None:  # --dry-run: show what a start would stop at
        return (f"the workspace configuration is not approved ({what}): a start stops here; "
                f"approve it with: {command}",), ()
    if ask(verdict):
        save_record(state, workspace, files)
        return (), (f"Trusted the configuration of {workspace}",)
    raise UntrustedConfigError(
        f"the configuration of workspace {workspace} is not approved: {what}",
        hint=f"Review it, then approve it with: {command}")


def _git_checks(
    workspace: Path, loaded: LoadedConfig, runner: Runner
) -> tuple[tuple[GuardMount, ...], tuple[str, ...]]:
    git_dir = git_dir_of(workspace)
    entries = run_read_config(runner, config_file_of(git_dir)) if git_dir else []
    settings = dict(entries)  # the last value of a key wins, as in git
    mounts = list(find_guard_mounts(
        workspace, hooks_path=settings.get("core.hookspath"),
        worktree_config=settings.get("extensions.worktreeconfig", "").lower() in _TRUE))
    dev = loaded.devcontainer
    dockerfile = dev.dockerfile_path if dev else None
    if dockerfile is not None and dockerfile.is_relative_to(workspace):
        mounts.append(GuardMount(str(dockerfile)))  # trusted by digest; read-only anyway
    risky = find_risky_settings(entries, workspace)
    warnings: list[str] = []
    if risky:
        warnings.append(f"the workspace's git config makes git on this host run commands: "
                        f"{', '.join(risky)} (read-only inside the sandbox; check they are yours)")
    if (workspace / ".git").is_symlink():
        warnings.append("the workspace's .git is a symlink: paude cannot keep the agent from "
                        "replacing it (git on this host would then run what the agent wrote)")
    return tuple(mounts), tuple(warnings)


def clear_workspace(
    workspace: Path,
    loaded: LoadedConfig,
    *,
    state: Path,
    runner: Runner,
    ask: Ask | None,
    cwd: Path,
) -> Clearance:
    """Check ``workspace`` before a session is planned or created.

    ``ask`` shows a verdict and returns the user's answer; ``None`` (for
    ``--dry-run``) turns an unapproved configuration into a warning.

    Raises:
        UntrustedConfigError: the configuration is not approved and ``ask`` said no.
    """
    warnings, notes = _check_trust(workspace, loaded, state=state, ask=ask, cwd=cwd)
    mounts, git_warnings = _git_checks(workspace, loaded, runner)
    return Clearance(mounts, warnings + git_warnings, notes)
