"""Planning a sync round: local wins, the pod's copy is kept, an edit beats a delete."""

from __future__ import annotations

import pytest

from paude.sync.engine import RoundResult
from paude.sync.rounds import Action, decide, plan_round
from paude.sync.state import Entry, Kind

A = Entry(Kind.FILE, 0o644, "a")
B = Entry(Kind.FILE, 0o644, "b")
C = Entry(Kind.FILE, 0o644, "c")
A_EXEC = Entry(Kind.FILE, 0o755, "a")
DIR = Entry(Kind.DIR, 0o755)


@pytest.mark.parametrize(("base", "local", "remote", "action"), [
    (A, A, A, Action.AGREE),
    (None, A, A, Action.AGREE),
    (A, None, None, Action.FORGET),
    (A, B, A, Action.PUSH),  # local edit
    (A, A, B, Action.PULL),  # pod edit
    (None, A, None, Action.PUSH),  # new local file
    (None, None, A, Action.PULL),  # new pod file
    (A, None, A, Action.DELETE_REMOTE),  # local delete
    (A, A, None, Action.DELETE_LOCAL),  # pod delete
    (A, A_EXEC, A, Action.PUSH),  # a mode change travels
    (DIR, Entry(Kind.DIR, 0o700), DIR, Action.AGREE),  # directory modes do not churn
])
def test_one_side_changed(base: Entry | None, local: Entry | None, remote: Entry | None,
                          action: Action) -> None:
    d = decide("x", base, local, remote)
    assert d.action is action
    assert d.conflict == ""


def test_both_edited_local_wins_and_the_pods_copy_is_kept() -> None:
    d = decide("x", A, B, C)
    assert d.action is Action.PUSH
    assert d.keep_remote_copy
    assert "both sides" in d.conflict


def test_no_base_and_different_contents_is_a_conflict() -> None:
    d = decide("x", None, B, C)
    assert (d.action, d.keep_remote_copy) == (Action.PUSH, True)


def test_pod_delete_of_a_local_edit_keeps_the_edit() -> None:
    d = decide("x", A, B, None)
    assert d.action is Action.PUSH
    assert "deleted in the pod" in d.conflict
    assert not d.keep_remote_copy


def test_local_delete_of_a_pod_edit_keeps_the_edit() -> None:
    d = decide("x", A, None, B)
    assert d.action is Action.PULL
    assert "deleted locally" in d.conflict


@pytest.mark.parametrize("path", [".git/config", ".git/hooks/pre-commit", ".git/info/exclude",
                                  "paude.json", ".devcontainer/devcontainer.json"])
def test_host_trusted_files_never_flow_back(path: str) -> None:
    assert decide(path, A, A, B).action is Action.IGNORE
    assert decide(path, A, A, None).action is Action.IGNORE
    assert decide(path, None, None, B).action is Action.IGNORE
    assert decide(path, A, B, C).action is Action.PUSH  # local changes still go to the pod
    assert not decide(path, A, B, C).keep_remote_copy


def test_force_makes_the_pod_a_copy_of_local() -> None:
    assert decide("x", A, A, B, force=True).action is Action.PUSH
    assert decide("x", None, None, B, force=True).action is Action.DELETE_REMOTE
    assert decide("x", A, B, C, force=True).conflict == ""


def test_plan_orders_parents_first_deletes_children_first_refs_last() -> None:
    paths = {"d", "d/e", "d/e/f", ".git/objects/ab/cd", ".git/refs/heads/main", "old/x", "old"}
    base = {"old": DIR, "old/x": A}
    local = {"d": DIR, "d/e": DIR, "d/e/f": A, "old": DIR, "old/x": A}
    remote = {"d": DIR, "d/e": DIR, "d/e/f": B, ".git/objects/ab/cd": A,
              ".git/refs/heads/main": C}
    order = [d.path for d in plan_round(paths, base, local, remote)]
    assert order.index(".git/objects/ab/cd") < order.index(".git/refs/heads/main")
    assert order.index("d/e") < order.index("d/e/f")
    assert order.index("old/x") < order.index("old")
    assert order[-2:] == ["old/x", "old"]


def test_a_round_of_whole_pushes_settles_anything_else_needs_another() -> None:
    assert RoundResult().settled and RoundResult(pushed=5).settled
    assert not RoundResult(pushed=5, unsent=1).settled  # a file changed while it was read
    assert RoundResult(unsent=1).settled  # nothing changed: another round would do the same
    assert not RoundResult(pushed=1, pulled=1).settled
    assert not RoundResult(pushed=1, deleted_remote=1).settled
    assert not RoundResult(pushed=1, deleted_local=1).settled
    assert not RoundResult(pushed=1, conflicts=["a: changed on both sides"]).settled
