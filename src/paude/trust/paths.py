"""Workspace paths the agent must never change on the host's behalf.

Everything here either runs on the host (git's config, hooks and info
files: ``git status`` and ``git commit`` on the host execute what they name)
or decides what the sandbox may do (``paude.json``, devcontainer files). The
podman backend mounts them read-only inside the agent; a backend that syncs
files back (OpenShift) must never copy them to the host: both ask
:func:`never_sync_back` / :data:`PROTECTED_PATTERNS`, one list for both.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fnmatch import fnmatchcase
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


# Code points HFS+ leaves out of a name when it compares two (the list git's
# ``is_hfs_dotgit`` guards against): ".g\u200cit" opens ".git" on macOS.
_HFS_IGNORED = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def _short_name(long: str) -> re.Pattern[str]:
    """Match the NTFS 8.3 names Windows may give ``long`` ("paude.json": "paude~1.jso")."""
    stem, dot, ext = long.lstrip(".").rpartition(".")
    if not dot:
        stem, ext = ext, ""
    tail = rf"\.{re.escape(ext[:3])}" if ext else ""
    return re.compile(rf"{re.escape(stem[:6])}~[0-9]+{tail}")


_SHORT_NAMES = tuple(
    (_short_name(name), name) for name in (GIT_DIR, *SANDBOX_CONFIG, *GIT_PROTECTED)
)
# Every protected path holds one of these in any ASCII spelling above, lower
# cased (the fast answer for plain ASCII paths, nearly all of them).
_MAYBE_PROTECTED = re.compile(
    "|".join(sorted({re.escape(n.lstrip(".")[:5]) for n in (GIT_DIR, *SANDBOX_CONFIG)}))
)


def fold_name(name: str) -> str:
    """Return the name a case-insensitive host file system opens for ``name``.

    macOS (HFS+, APFS) and Windows (NTFS) compare names without case, macOS
    also without the ignorable code points of :data:`_HFS_IGNORED` and up to
    Unicode normalization, NTFS also without trailing dots and spaces, an
    alternate data stream (``.git::$INDEX_ALLOCATION`` is the directory) or
    with a short name (``GIT~1``). Each maps to the protected name it opens.
    """
    if name.isascii():
        folded = name.lower()
    else:
        folded = unicodedata.normalize("NFC", name.translate(_HFS_IGNORED)).casefold()
    folded = folded.partition(":")[0].rstrip(" .")
    if "~" in folded:
        for pattern, long in _SHORT_NAMES:
            if pattern.fullmatch(folded):
                return long
    return folded


def never_sync_back(relpath: str, *, is_dir: bool = False) -> bool:
    """Return whether the workspace path ``relpath`` must never be copied to the host.

    ``relpath`` is relative to the workspace root (``a/b`` or ``./a/b``); a
    path below a protected directory is protected too. A ``.git`` *directory*
    is not protected as a whole (its objects and refs are the agent's
    commits), only what :data:`GIT_PROTECTED` names inside it; a ``.git``
    *file* (a worktree's or submodule's pointer, ``is_dir=False``) points
    git anywhere and is protected. Names compare as the host's file system
    may (:func:`fold_name`): ``.GIT/config`` is ``.git/config`` on macOS.
    :data:`PROTECTED_PATTERNS` cannot tell a file from a directory, nor
    fold: check each path with this function.
    """
    if relpath.isascii() and not _MAYBE_PROTECTED.search(relpath.lower()):
        return False  # most paths: no spelling of a protected name
    parts = tuple(fold_name(p) for p in relpath.split("/") if p not in ("", "."))
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
