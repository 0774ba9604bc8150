"""Repository-wide test configuration: markers by directory, a stable environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal import Terminal

_MARKERS = {"podman": "podman", "k8s": "k8s"}
SRC = Path(__file__).resolve().parents[1] / "src"


def pytest_configure(config: pytest.Config) -> None:
    """Make every child Python import this checkout's paude, not an installed one.

    Checkouts side by side (git worktrees) share one editable install; a test
    that runs ``python -m paude`` must test the code next to it.
    """
    rest = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(SRC) + (os.pathsep + rest if rest else "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by the directory it lives in (tests/podman, tests/k8s)."""
    root = Path(__file__).parent
    for item in items:
        parts = Path(str(item.fspath)).relative_to(root).parts
        marker = _MARKERS.get(parts[0]) if parts else None
        if marker:
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(autouse=True)
def _environ_is_stable() -> Iterator[None]:
    """Fail a test that leaves os.environ changed (tox's check_os_environ_stable)."""
    before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    yield
    after = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    assert after == before, f"test changed os.environ: {set(after) ^ set(before)}"


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    """A real terminal (a private host tmux server), closed after the test."""
    term = Terminal()
    try:
        yield term
    finally:
        term.close()
