"""A gate in front of the real podman: hold paude at one podman call.

Interruption tests need paude stopped at a known point of a start (a network
made, the proxy created, the agent not yet) to ``kill -9`` it there or to run
a second command beside it. Polling podman for such a moment races a start
that takes a second or two. Instead, a ``podman`` script first on paude's
PATH runs the *real* podman for every call, except that the first call whose
argv contains ``match`` waits on a FIFO before (``when="before"``) or after
(``when="after"``) the real podman runs. The test waits for the gate to be
reached (a condition, no sleep), looks at what exists by label, then kills
paude or releases the gate.

The gate changes no podman behaviour: every call still runs the real binary
with the same argv, only later. Every call's argv is logged (``Gate.calls``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """#!/bin/bash
# tests/podman/gate.py: hold paude at one podman call; every call runs the real podman.
gate={gate}
real={real}
printf '%s\n' "$*" >> "$gate/calls"
if [[ -e "$gate/match" && " $* " == *" $(cat "$gate/match") "* ]] \\
        && mkdir "$gate/hit" 2>/dev/null; then
    when=$(cat "$gate/when")
    rc=0
    if [[ "$when" == after ]]; then "$real" "$@" || rc=$?; fi
    echo "$PPID $$" > "$gate/hit/pids.tmp" && mv "$gate/hit/pids.tmp" "$gate/hit/pids"
    read -r _ < "$gate/release"
    if [[ "$when" == after ]]; then exit "$rc"; fi
fi
exec "$real" "$@"
"""


@dataclass
class Gate:
    """One gate: its directory goes first on PATH of the paude it holds."""

    path: Path

    @classmethod
    def make(cls, root: Path, *, match: str, when: str = "before") -> Gate:
        """Create a gate under ``root`` holding the first podman call containing ``match``."""
        real = shutil.which("podman")
        assert real is not None, "podman is not installed: run scripts/setup"
        path = root / f"gate-{len(list(root.glob('gate-*')))}"
        path.mkdir()
        path.chmod(0o777)  # the rootless user writes its marker here
        (path / "match").write_text(match)
        (path / "when").write_text(when)
        os.mkfifo(path / "release", 0o666)
        (path / "release").chmod(0o666)
        (path / "calls").touch(mode=0o666)
        (path / "calls").chmod(0o666)  # every held paude's user appends to it
        script = path / "podman"
        script.write_text(SCRIPT.format(gate=path, real=real))
        script.chmod(0o755)
        for item in (path / "match", path / "when"):
            item.chmod(0o644)
        return cls(path)

    def env(self, base_path: str) -> dict[str, str]:
        """Return the environment entries that put the gate in front of podman."""
        return {"PATH": f"{self.path}:{base_path}"}

    def reached(self) -> bool:
        """Answer whether a paude is held at the gate."""
        return (self.path / "hit" / "pids").exists()

    def wait(self, *, seconds: float = 300, alive: subprocess.Popen[str] | None = None
             ) -> tuple[int, int]:
        """Wait until the gate is reached; return the pids of the held paude and the gate."""
        deadline = time.monotonic() + seconds
        while not self.reached():
            if alive is not None and alive.poll() is not None:
                out, err = alive.communicate()
                raise AssertionError(f"paude exited {alive.returncode} before the gate "
                                     f"{self.match!r}:\n{out}\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {seconds}s waiting for the gate "
                                     f"{self.match!r}")
            time.sleep(0.05)
        paude, shim = (self.path / "hit" / "pids").read_text().split()
        return int(paude), int(shim)

    def calls(self) -> list[list[str]]:
        """Return the argv (after ``podman``) of every call that went through the gate."""
        return [line.split() for line in (self.path / "calls").read_text().splitlines()]

    @property
    def match(self) -> str:
        return (self.path / "match").read_text()

    def release(self) -> None:
        """Let the held podman call go on (returns when the gate has read it)."""
        fd = os.open(self.path / "release", os.O_WRONLY)
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)
