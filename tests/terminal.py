"""A real terminal for tests: a pane of a private host tmux server that a
test types into (send-keys) and reads (capture-pane), as a person would."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable


def wait_until(what: str, probe: Callable[[], bool], *, seconds: float = 30,
               shown: Callable[[], str] = lambda: "") -> None:
    """Poll ``probe`` until it is true; fail after ``seconds`` with ``shown()``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}\n{shown()}")


class Terminal:
    """A real terminal (a pane of a private host tmux server) that a test types into and reads.

    It runs on its own server (``-L``), so it never touches the user's tmux
    sessions, and ``close`` ends all of it.
    """

    def __init__(self) -> None:
        self.name = f"paude-test-term-{secrets.token_hex(4)}"
        self._tmux("new-session", "-d", "-s", self.name, "-x", "200", "-y", "50",
                   "bash --norc --noprofile")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.name, *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout

    def type(self, text: str, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        if keys:
            self._tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-t", self.name)

    def shell_pid(self) -> int:
        return int(self._tmux("display-message", "-p", "-t", self.name, "#{pane_pid}"))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True,
                       check=False, timeout=30)
