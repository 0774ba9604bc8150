"""The per-session lock: real flock on real files, across threads and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from paude.errors import SessionNotFoundError
from paude.session_lock import lock_path, session_lock

HOLD_PY = """
import sys
from paude.session_lock import session_lock
with session_lock(sys.argv[1], on_wait=print):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    return tmp_path


def test_a_second_command_waits_for_the_first() -> None:
    waited, got = threading.Event(), threading.Event()
    messages: list[str] = []

    def second() -> None:
        def on_wait(message: str) -> None:
            messages.append(message)
            waited.set()

        with session_lock("s", on_wait=on_wait):
            got.set()

    with session_lock("s", on_wait=messages.append):
        thread = threading.Thread(target=second)
        thread.start()
        assert waited.wait(10)
        assert not got.is_set()  # still ours
    assert got.wait(10)
    thread.join(10)
    assert messages == [f"Waiting for another paude command on session s (pid {os.getpid()}) "
                        "to finish"]


def test_other_sessions_do_not_wait() -> None:
    with session_lock("a", on_wait=pytest.fail), session_lock("b", on_wait=pytest.fail):
        assert lock_path("a") != lock_path("b")


def test_kill_9_of_the_holder_releases_the_lock() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_PY, "s"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with session_lock("s", on_wait=pytest.fail):  # no wait: the kernel released it
            pass
    finally:
        holder.kill()
        holder.wait(10)


def test_a_discarded_lock_still_excludes() -> None:
    """A waiter on a discarded file relocks the new one: never two holders."""
    waiting, second_holds, release_second = threading.Event(), threading.Event(), threading.Event()

    def second() -> None:
        with session_lock("s", on_wait=lambda _: waiting.set()):
            second_holds.set()
            release_second.wait(10)

    with session_lock("s", on_wait=pytest.fail) as lock:
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(10)
        lock.discard()
    assert second_holds.wait(10)
    third_waited = threading.Event()

    def third() -> None:
        with session_lock("s", on_wait=lambda _: third_waited.set()):
            pass

    other = threading.Thread(target=third)
    other.start()
    assert third_waited.wait(10)  # the second still holds the (new) file
    release_second.set()
    thread.join(10)
    other.join(10)
    assert lock_path("s").exists()


def test_a_command_on_no_such_session_leaves_no_lock_file() -> None:
    with pytest.raises(SessionNotFoundError, match="no session"), \
            session_lock("typo", on_wait=lambda _: None):
        raise SessionNotFoundError("no session named 'typo'")
    assert not lock_path("typo").exists()
