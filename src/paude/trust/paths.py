"""Workspace paths the agent must never change on the host's behalf.

Everything here either runs on the host (git's config, hooks and info
files: ``git status`` and ``git commit`` on the host execute what they name)
or decides what the sandbox may do (``paude.json``, devcontainer files). The
podman backend mounts them read-only inside the agent; a backend that syncs
files back (OpenShift) must never copy them to the host: both ask
:func:`never_sync_back` / :data:`PROTECTED_PATTERNS`, one list for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Literal

GIT_DIR = ".git"
# Inside the git directory: what git reads as configuration or runs as code.
GIT_PROTECTED = ("config", "hooks", "info", "commondir", "config.worktree", "modules",
                 "worktrees")
SANDBOX_CONFIG = ("paude.json", ".devcontainer", ".devcontainer.json")

# rsync-style patterns, relative to the workspace root ("/" anchors at the root).
# "**/.git/..." covers nested repositories and submodules, which the host's
# git also reads (``git status`` recurses into submodules).
PROTECTED_PATTERNS: tuple[str, ...] = (
    *(f"/{name}" for name in SANDBOX_CONFIG),
    *(f"**/.git/{name}" for name in GIT_PROTECTED),
    *(f"/.git/{name}" for name in GIT_PROTECTED),
)


def never_sync_back(relpath: str, *, is_dir: bool = False) -> bool:
    """Return whether the workspace path ``relpath`` must never be copied to the host.

    ``relpath`` is relative to the workspace root (``a/b`` or ``./a/b``); a
    path below a protected directory is protected too. A ``.git`` *directory*
    is not protected as a whole (its objects and refs are the agent's
    commits), only what :data:`GIT_PROTECTED` names inside it; a ``.git``
    *file* (a worktree's or submodule's pointer, ``is_dir=False``) points
    git anywhere and is protected. :data:`PROTECTED_PATTERNS` cannot tell a
    file from a directory: check a top-level ``.git`` file with this function.
    """
    parts = tuple(p for p in PurePosixPath(relpath).parts if p not in ("/", "."))
    if not parts:
        return False
    if parts[0] in SANDBOX_CONFIG:
        return True
    if parts[-1] == GIT_DIR and not is_dir:
        return True
    return any(
        part == GIT_DIR and any(fnmatchcase(parts[i + 1], n) for n in GIT_PROTECTED)
        for i, part in enumerate(parts[:-1])
    )


@dataclass(frozen=True)
class GuardMount:
    """A path inside the workspace mounted over itself in the agent.

    ``read_only=False`` only pins the path (a mount point cannot be renamed or
    removed). ``create`` says what to make first when it does not exist yet.
    """

    path: str
    read_only: bool = True
    create: Literal["dir", "file"] | None = None
    content: str = ""  # what a created file holds
