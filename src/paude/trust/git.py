"""The workspace's git metadata that runs on the host, and how the sandbox guards it.

The host's ``git status`` / ``git commit`` in the workspace run what
``.git/config`` names (``core.fsmonitor``, ``core.hooksPath``, filter and
diff drivers, ``core.sshCommand``) and ``.git/hooks/*``. Inside the
sandbox those are read-only bind mounts over the read-write workspace, and
the ``.git`` directory itself is a mount point (so it cannot be renamed or
replaced); the agent can still commit, branch and stash, which only write
objects, refs, logs and the index.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from paude.errors import RuntimeMissingError
from paude.runner import TIMEOUT_INSPECT, Runner
from paude.trust.paths import GIT_DIR, GIT_PROTECTED, SANDBOX_CONFIG, GuardMount

# Made when missing so the agent cannot create them: empty ones are harmless to
# git, and a ``commondir`` of "." names the git directory itself (one the agent
# wrote would make the host's git read config from a directory it controls).
_CREATE_IF_MISSING: dict[str, tuple[Literal["dir", "file"], str]] = {
    "config": ("file", ""), "hooks": ("dir", ""), "info": ("dir", ""),
    "commondir": ("file", ".\n")}
_BOOLEAN = {"true", "false", "yes", "no", "on", "off", "1", "0", ""}
# (section, name) of settings whose value git runs, whatever the subsection:
# filter.<driver>.clean, gpg.ssh.program, credential.<url>.helper, remote.<name>.uploadpack...
_DRIVER_KEYS = {("filter", "clean"), ("filter", "smudge"), ("filter", "process"),
                ("diff", "textconv"), ("diff", "command"), ("merge", "driver"),
                ("gpg", "program"), ("credential", "helper"), ("mergetool", "cmd"),
                ("difftool", "cmd"), ("remote", "uploadpack"), ("remote", "receivepack"),
                ("trailer", "cmd"), ("trailer", "command")}
# Run by the host's git status/commit/log/push/fetch (an editor, a pager, a helper).
_COMMAND_KEYS = {"core.sshcommand", "diff.external", "include.path", "core.pager",
                 "core.editor", "sequence.editor", "core.askpass", "core.gitproxy",
                 "core.alternaterefscommand"}


def parse_config_list(output: str) -> list[tuple[str, str]]:
    """Parse ``git config --list -z`` output: ``key\\nvalue`` records ending in NUL."""
    entries = []
    for record in output.split("\0"):
        if record:
            key, _, value = record.partition("\n")
            entries.append((key, value))
    return entries


def _inside(path: str, workspace: Path) -> bool:
    target = Path(os.path.normpath(workspace / os.path.expanduser(path)))
    return target == workspace or workspace in target.parents


def _runs_command(key: str, value: str, workspace: Path) -> bool:
    section, _, name = key.rpartition(".")
    kind = section.partition(".")[0]
    if key in _COMMAND_KEYS or (kind, name) in _DRIVER_KEYS:
        return bool(value)  # an empty value resets the setting
    return (
        (key == "core.fsmonitor" and value.lower() not in _BOOLEAN)
        or (key == "core.hookspath" and _inside(value, workspace))
        or (kind == "includeif" and name == "path")
        or (kind == "pager" and value.lower() not in _BOOLEAN)  # pager.<command>
        or (kind in {"alias", "submodule"} and value.startswith("!"))  # shell commands
        or (kind == "remote" and name in {"url", "pushurl"} and value.startswith("ext::"))
    )


def find_risky_settings(entries: Sequence[tuple[str, str]], workspace: Path) -> list[str]:
    """Return ``key=value`` for each setting that makes host git run a command."""
    return [f"{key}={value}" for key, value in entries if _runs_command(key, value, workspace)]


def git_dir_of(workspace: Path) -> Path | None:
    """Return the workspace's git directory (following a ``.git`` file), or ``None``."""
    dot_git = workspace / GIT_DIR
    if dot_git.is_dir() and not dot_git.is_symlink():
        return dot_git
    if dot_git.is_file() and not dot_git.is_symlink():
        first = dot_git.read_text(encoding="utf-8", errors="replace").partition("\n")[0]
        if first.startswith("gitdir:"):
            gitdir = Path(first.removeprefix("gitdir:").strip())
            return gitdir if gitdir.is_absolute() else (workspace / gitdir).resolve()
    return None


def config_file_of(git_dir: Path) -> Path:
    """Return the config file git reads for ``git_dir`` (a worktree's is the common one)."""
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = Path(commondir.read_text(encoding="utf-8").strip())
        return (common if common.is_absolute() else git_dir / common).resolve() / "config"
    return git_dir / "config"


def run_read_config(runner: Runner, config: Path) -> list[tuple[str, str]]:
    """Return the settings in ``config`` (and what it includes), read by git itself.

    An absent git, or a file git cannot parse, yields no settings: the host's
    git could not run anything from it either.
    """
    if not config.is_file():
        return []
    argv = ["git", "config", "--file", str(config), "--includes", "--list", "-z"]
    try:
        result = runner.run(argv, timeout=TIMEOUT_INSPECT, check=False,
                            env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
    except RuntimeMissingError:
        return []
    return parse_config_list(result.stdout) if result.returncode == 0 else []


def find_guard_mounts(
    workspace: Path, *, hooks_path: str | None = None, worktree_config: bool = False
) -> tuple[GuardMount, ...]:
    """Return the mounts that keep git metadata and sandbox config read-only.

    The workspace's own ``.git`` directory is pinned and the parts of it that
    execute on the host are made read-only (created empty first when absent,
    so the agent cannot create them). A ``.git`` file (a worktree or
    submodule pointer) is read-only: rewritten, it would point the host's git
    at agent-written config. ``hooks_path`` is ``core.hooksPath``; inside the
    workspace it is read-only too; ``worktree_config`` is whether
    ``extensions.worktreeConfig`` is on (then ``config.worktree`` counts too).
    """
    mounts: list[GuardMount] = []
    dot_git = workspace / GIT_DIR
    if dot_git.is_dir() and not dot_git.is_symlink():
        mounts.append(GuardMount(str(dot_git), read_only=False))
        missing = dict(_CREATE_IF_MISSING)
        if worktree_config:  # git reads config.worktree only with this extension on
            missing["config.worktree"] = ("file", "")
        for name in GIT_PROTECTED:
            create, content = missing.get(name, (None, ""))
            if (dot_git / name).exists() or create:
                mounts.append(GuardMount(str(dot_git / name), create=create, content=content))
    elif dot_git.is_file() and not dot_git.is_symlink():
        mounts.append(GuardMount(str(dot_git)))
    if hooks_path and _inside(hooks_path, workspace):
        hooks = Path(os.path.normpath(workspace / os.path.expanduser(hooks_path)))
        if hooks != workspace and not any(m.path == str(hooks) for m in mounts):
            mounts.append(GuardMount(str(hooks), create="dir"))
    for name in SANDBOX_CONFIG:
        if (workspace / name).exists() and not (workspace / name).is_symlink():
            mounts.append(GuardMount(str(workspace / name)))
    return tuple(mounts)


def apply_mount_points(mounts: Sequence[GuardMount], owner: tuple[int, int]) -> None:
    """Create the missing mount points (empty; owned by ``owner``, the workspace's owner)."""
    for mount in mounts:
        path = Path(mount.path)
        if mount.create is None or path.exists():
            continue
        if mount.create == "dir":
            path.mkdir(mode=0o755, parents=True)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(mount.content)
        if os.geteuid() == 0:
            os.chown(path, *owner)
