"""Hold a running paude between two plan steps, through its own step log.

paude appends every step it applies to the file ``PAUDE_STEP_LOG`` names
(paude.plan.log_step), opening it right before the step. Here that name is a
FIFO, and opening a FIFO for writing waits until someone opens it for
reading: paude stops in that ``open`` (``/proc/PID/wchan`` says
``wait_for_partner``) before each step, with every earlier step applied.

``let_through`` lets one step go: it first puts a fresh FIFO at the name
(paude's pending ``open`` keeps the old one), then reads the step from the
old one. paude's next ``open`` finds the fresh FIFO, which nobody reads, so
it stops again before the next step, whatever the machine's load. Nothing
races: a test kills paude while it waits in that ``open``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from paude.plan import STEP_LOG_ENV, STEP_SEPARATOR

HELD = "wait_for_partner"  # the kernel function an open of a FIFO without a reader waits in


class StepGate:
    """A ``PAUDE_STEP_LOG`` that stops paude before each plan step until let through."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        self.root = root
        self.path = root / "steps.log"
        self.steps: list[str] = []  # the steps let through, as paude rendered them
        self._made = 0
        self._fifo = self._fresh_fifo()
        os.link(self._fifo, self.path)

    def env(self) -> dict[str, str]:
        return {STEP_LOG_ENV: str(self.path)}

    def _fresh_fifo(self) -> Path:
        self._made += 1
        fifo = self.root / f"fifo-{self._made}"
        os.mkfifo(fifo)
        return fifo

    def wait_held(self, proc: subprocess.Popen[str], *, seconds: float = 180) -> None:
        """Wait until paude waits to log (so, to apply) its next step."""
        deadline = time.monotonic() + seconds
        while _wchan(proc.pid) != HELD:
            if proc.poll() is not None:
                raise AssertionError(f"paude ended ({proc.returncode}) after the steps"
                                     f" {[_title(s) for s in self.steps]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"paude did not reach its next step in {seconds}s"
                                     f" (after {[_title(s) for s in self.steps]})")
            time.sleep(0.02)

    def let_through(self, proc: subprocess.Popen[str]) -> str:
        """Let paude apply its next step; return that step's text."""
        self.wait_held(proc)
        held = self._fifo
        self._fifo = self._fresh_fifo()
        os.replace(self._link(), self.path)  # paude's next open finds the fresh FIFO
        return self._read(held)

    def release(self, proc: subprocess.Popen[str]) -> None:
        """Let paude go on without stopping again (its next steps go to a plain file)."""
        self.wait_held(proc)
        plain = self.root / "plain.log"
        plain.touch()
        os.replace(plain, self.path)
        self._read(self._fifo)

    def _read(self, held: Path) -> str:
        fd = os.open(held, os.O_RDONLY)  # paude's pending open completes
        chunks = []
        try:
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(fd)
        text = b"".join(chunks).decode()
        assert text.endswith(STEP_SEPARATOR), text
        self.steps.append(text.removesuffix(STEP_SEPARATOR))
        return self.steps[-1]

    def let_through_until(self, proc: subprocess.Popen[str], marker: str) -> None:
        """Let steps through up to and including the first whose text holds ``marker``."""
        while marker not in self.let_through(proc):
            pass
        self.wait_held(proc)  # that step applied, the next one not

    def _link(self) -> Path:
        link = self.root / "next"
        os.link(self._fifo, link)
        return link


def _wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


def _title(step: str) -> str:
    """The step's kind and name (``Secret paude-proxy-...``) for messages."""
    kind = next((ln.split(": ", 1)[1] for ln in step.splitlines() if ln.startswith("kind: ")), "?")
    name = next((ln.split(": ", 1)[1] for ln in step.splitlines() if ln.startswith("  name: ")),
                "?")
    return f"{kind} {name}"
