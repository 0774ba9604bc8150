"""The podman executor's build steps: one build of a tag at a time, none once it exists."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from fakes import RecordingRunner
from paude.backends.podman.execute import PlanExecutor
from paude.plan import Build, Plan
from paude.runner import Result
from paude.session_lock import image_lock_path

TAG = "localhost/paude-agent:0123456789ab"
BASE = Build(("podman", "build", "-t", "localhost/paude-user-base:1", "."), "base", TAG)
FINAL = Build(("podman", "build", "-t", TAG, "."), "agent", TAG)


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def status(self, message: str) -> AbstractContextManager[None]:
        raise AssertionError("no status expected")

    def warn(self, message: str) -> None:
        self.lines.append(message)

    def info(self, message: str) -> None:
        self.lines.append(message)

    @contextmanager
    def follow(self, what: str, *, done: str) -> Iterator[Callable[[str], None]]:
        yield lambda line: None


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))


def _is_locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_the_tags_lock_is_held_over_all_its_build_steps_and_released_after() -> None:
    locked: list[bool] = []

    def responder(argv: tuple[str, ...]) -> Result | None:
        if argv[:2] == ("podman", "build"):
            locked.append(_is_locked(image_lock_path(TAG)))
            return Result(argv, 0, "", "")
        return Result(argv, 1, "", "") if argv[1:3] == ("image", "exists") else None

    runner = RecordingRunner(responder)
    PlanExecutor(runner, Reporter()).run(Plan((BASE, FINAL)))
    assert locked == [True, True]
    assert not image_lock_path(TAG).exists()  # released, and no file left per tag
    # asked once before the lock and once holding it (another paude may have built it)
    assert runner.commands("podman", "image", "exists") == [("podman", "image", "exists", TAG)] * 2


def test_an_image_built_while_waiting_for_the_lock_is_not_built_again() -> None:
    answers = iter([1, 0])  # missing; there once the lock is held

    def responder(argv: tuple[str, ...]) -> Result | None:
        if argv[1:3] == ("image", "exists"):
            return Result(argv, next(answers), "", "")
        return None

    runner = RecordingRunner(responder)
    PlanExecutor(runner, Reporter(), on_build=lambda _: pytest.fail("no build")).run(
        Plan((BASE, FINAL)))
    assert runner.commands("podman", "build") == []
    assert not image_lock_path(TAG).exists()
