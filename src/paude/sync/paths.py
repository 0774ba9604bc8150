"""Which workspace paths sync, which never flow back, and which are refused.

Paths are always POSIX, relative to the workspace root, without ``.`` or
``..`` components; anything else coming from the pod is refused before it
reaches the local file system.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pathspec

from paude.errors import ConfigError
from paude.trust.paths import never_sync_back

# Directories skipped anywhere in the tree (pruned in the pod's scans and watches too).
DEFAULT_EXCLUDED_DIRS = (
    ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".tox", ".nox", ".cache", ".gradle", "target", ".terraform",
)
_EXCLUDED_DIR_SET = frozenset(DEFAULT_EXCLUDED_DIRS)
# paude's own workspace directory: conflict copies and the sync's staging area.
PAUDE_DIR = ".paude"
CONFLICTS_DIR = f"{PAUDE_DIR}/conflicts"
STAGING_DIR = f"{PAUDE_DIR}/tmp"
# Files matched anywhere, in gitignore syntax: git's per-process lock files
# would block git on the other side; editor swap files are never wanted.
DEFAULT_EXCLUDED_PATTERNS = (
    f"/{PAUDE_DIR}/", ".git/**/*.lock", ".git/*.lock", "*.swp", "*.swx", ".DS_Store",
)


def is_never_back(path: str, *, is_dir: bool = False) -> bool:
    """Say whether a change to ``path`` made in the pod must never reach the host.

    The one list is the trust module's (git config, hooks, info; paude.json
    and devcontainer files): they go to the pod, never back, in any spelling
    a case-insensitive host opens as one of them (``.GIT/config``).
    """
    return never_sync_back(path, is_dir=is_dir)


def check_path(path: str) -> str:
    """Return ``path`` if it is a clean relative workspace path, else raise ``ConfigError``."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\0" in path
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ConfigError(f"refused a sync path outside the workspace: {path!r}")
    return path


def is_clean_path(path: str) -> bool:
    """Say whether ``check_path`` accepts ``path``."""
    try:
        check_path(path)
    except ConfigError:
        return False
    return True


@dataclass(frozen=True)
class Excludes:
    """The default excludes plus the user's ``sync.exclude`` (gitignore syntax)."""

    patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        spec = _compile(self.patterns)
        matches = _any_match(spec) or spec.match_file

        # A round asks about each path twice (the local walk, the pod's
        # listing) and the next round again: remember the answers.
        @functools.lru_cache(maxsize=1 << 17)
        def match(path: str, is_dir: bool) -> bool:
            parts = path.split("/")
            if not _EXCLUDED_DIR_SET.isdisjoint(parts if is_dir else parts[:-1]):
                return True
            return bool(matches(path + "/" if is_dir else path))

        object.__setattr__(self, "_match", match)

    def is_excluded(self, path: str, *, is_dir: bool = False) -> bool:
        """Say whether ``path`` (or one of its parent directories) is excluded."""
        match: Callable[[str, bool], bool] = object.__getattribute__(self, "_match")
        return match(path, is_dir)

    def filter(self, paths: Iterable[str]) -> list[str]:
        """Return the paths of ``paths`` that are not excluded."""
        return [p for p in paths if not self.is_excluded(p)]


def _any_match(spec: pathspec.GitIgnoreSpec) -> Callable[[str], object] | None:
    """Return one regex's search for ``spec`` when none of its patterns negates; else None.

    Without a ``!`` pattern, gitignore excludes a path when any pattern
    matches it, so the patterns' own regexes (pathspec's, their named
    groups made plain) joined as alternatives decide the same in one
    search: pathspec tries each pattern in turn (about 2 us a pattern).
    """
    used = [p for p in spec.patterns if p.include is not None]
    if any(not p.include for p in used):
        return None
    sources = [r.pattern for p in used if isinstance(r := getattr(p, "regex", None), re.Pattern)]
    if len(sources) != len(used) or not all(isinstance(s, str) for s in sources):
        return None
    if not sources:
        return lambda _path: False
    try:
        return re.compile("|".join(f"(?:{re.sub(r'[(][?]P<[^>]*>', '(', s)})"
                                   for s in sources)).search
    except re.error:
        return None


def _compile(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    try:
        return pathspec.GitIgnoreSpec.from_lines([*DEFAULT_EXCLUDED_PATTERNS, *patterns])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"bad sync.exclude pattern: {err}") from err
