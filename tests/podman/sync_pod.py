"""A container that stands in for the agent pod: the sync's exec stream is ``podman exec -i``.

The image is debian plus inotify-tools and git (what the agent image has for
the sync); it runs as uid 1000 with a /workspace, like the agent.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from paude.sync import BuiltinSync, ExecTransport, SyncSpec, build_podman_prefix

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
CONTAINERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends inotify-tools git \\
    >/dev/null && rm -rf /var/lib/apt/lists/* && mkdir /workspace && chown 1000:1000 /workspace
USER 1000
"""
IMAGE = "localhost/paude-test-sync:" + hashlib.sha256(CONTAINERFILE.encode()).hexdigest()[:12]


def podman(*args: str, input: bytes | None = None, check: bool = True,
           ) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["podman", *args], input=input, capture_output=True, timeout=300,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} failed: {proc.stderr.decode()}")
    return proc


def ensure_image() -> str:
    """Build the stand-in image once (it is cached by the hash of its Containerfile)."""
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        podman("build", "-q", "--label", "paude.io/test=1", "-t", IMAGE, "-f", "-", "/",
               input=CONTAINERFILE.encode())
    return IMAGE


@dataclass
class SyncPod:
    """One stand-in pod and one local workspace, paired by a sync."""

    name: str
    workspace: Path
    outside: Path  # a directory beside the workspace that nothing may touch

    def sh(self, script: str, *args: str, check: bool = True) -> str:
        """Run ``script`` in the container's /workspace; return stdout."""
        proc = podman("exec", "-w", "/workspace", self.name, "sh", "-c", script, "sh", *args,
                      check=check)
        return proc.stdout.decode()

    def write(self, path: str, data: str) -> None:
        self.sh('mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"', path, data)

    def read(self, path: str) -> str | None:
        out = self.sh('cat "$1" 2>/dev/null || printf "\\0missing"', path)
        return None if out == "\0missing" else out

    def spec(self, session: str, excludes: tuple[str, ...] = ()) -> SyncSpec:
        return SyncSpec(session, self.workspace,
                        ExecTransport(build_podman_prefix(self.name)), excludes)


def start_pod(tmp: Path) -> Iterator[SyncPod]:
    """Run the stand-in pod for one test; remove it afterwards, even on failure."""
    name = f"paude-test-sync-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--rm", "--label", "paude.io/test=1", "--name", name, ensure_image(),
           "sleep", "infinity")
    workspace, outside = tmp / "workspace", tmp / "outside"
    workspace.mkdir()
    outside.mkdir()
    try:
        yield SyncPod(name, workspace, outside)
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 60.0,
             every: float = 0.05) -> None:
    """Poll ``cond`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def children(pid: int) -> list[int]:
    """Return the pids of the direct children of ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def stop_sync(sync: BuiltinSync) -> None:
    """Stop the test's background sync (by the pid holding its lock)."""
    sync.stop()
