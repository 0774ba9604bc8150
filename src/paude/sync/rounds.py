"""Plan one sync round: compare each side with the last agreed state.

Pure: given the agreed entry (base), the local and the pod's entries of
each path, return what to do. Local wins a conflict; the pod's version is
kept as a conflict copy; a delete never beats an edit on the other side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from paude.sync.paths import is_never_back
from paude.sync.state import Entry, Kind


class Action(StrEnum):
    """What a round does with one path."""

    AGREE = "agree"  # both sides hold the same: record it
    FORGET = "forget"  # gone on both sides: drop the record
    PUSH = "push"  # local -> pod
    PULL = "pull"  # pod -> local
    DELETE_LOCAL = "delete-local"
    DELETE_REMOTE = "delete-remote"
    IGNORE = "ignore"  # a pod change that must never flow back


@dataclass(frozen=True)
class Decision:
    """One path's action; ``conflict`` names why both sides changed, else empty."""

    path: str
    action: Action
    conflict: str = ""
    keep_remote_copy: bool = False  # keep the pod's version under .paude/conflicts


def _same(a: Entry | None, b: Entry | None) -> bool:
    return a is None and b is None or a is not None and a.same(b)


def decide(
    path: str, base: Entry | None, local: Entry | None, remote: Entry | None, *, force: bool = False
) -> Decision:
    """Return what to do with ``path`` (``force``: the pod becomes a copy of local)."""
    if _same(local, remote):
        return Decision(path, Action.FORGET if local is None else Action.AGREE)
    if force:
        return Decision(path, Action.DELETE_REMOTE if local is None else Action.PUSH)
    local_changed = not _same(local, base)
    shown = remote or local or base
    if is_never_back(path, is_dir=shown is not None and shown.kind is Kind.DIR):
        if not local_changed:
            return Decision(path, Action.IGNORE)
        return Decision(path, Action.DELETE_REMOTE if local is None else Action.PUSH)
    if not local_changed:
        return Decision(path, Action.DELETE_LOCAL if remote is None else Action.PULL)
    if _same(remote, base):
        return Decision(path, Action.DELETE_REMOTE if local is None else Action.PUSH)
    return _conflict(path, local, remote)


def _conflict(path: str, local: Entry | None, remote: Entry | None) -> Decision:
    if local is None:
        return Decision(path, Action.PULL, "deleted locally, changed in the pod: kept the pod's")
    if remote is None:
        return Decision(path, Action.PUSH, "changed locally, deleted in the pod: kept the local")
    if local.kind is Kind.DIR and remote.kind is Kind.DIR:
        return Decision(path, Action.AGREE)
    return Decision(
        path,
        Action.PUSH,
        "changed on both sides: kept the local, saved the pod's",
        keep_remote_copy=remote.kind is Kind.FILE,
    )


def plan_round(
    paths: set[str],
    base: Mapping[str, Entry],
    local: Mapping[str, Entry | None],
    remote: Mapping[str, Entry | None],
    *,
    force: bool = False,
) -> list[Decision]:
    """Decide every path, ordered so the result is valid at each step.

    Creations go parents first, deletions children first, and git's refs are
    written after its objects (so a ref never names an object not yet local).
    """
    decisions = [
        decide(p, base.get(p), local.get(p), remote.get(p), force=force) for p in paths
    ]
    return sorted(decisions, key=_order)


def _order(d: Decision) -> tuple[int, int, str]:
    depth = d.path.count("/")
    if d.action in (Action.DELETE_LOCAL, Action.DELETE_REMOTE):
        return (2, -depth, d.path)
    return (1 if _is_git_ref(d.path) else 0, depth, d.path)


def _is_git_ref(path: str) -> bool:
    return path in (".git/HEAD", ".git/packed-refs", ".git/ORIG_HEAD", ".git/FETCH_HEAD") or (
        path.startswith(".git/refs/") or path.startswith(".git/logs/")
    )
