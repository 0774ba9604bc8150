"""File events from both sides, fed into one queue.

Local events come from watchfiles (Rust notify); the pod's from inotifywait
running in the pod, streamed over its own exec. Either watcher ending puts
``WatcherEnded`` on the queue, and the service restarts it and catches up.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from paude.errors import PaudeError
from paude.runner.pipes import Pipe
from paude.sync.local import staging_dir
from paude.sync.paths import STAGING_DIR
from paude.sync.transport import WATCH_READY, ExecTransport, parse_watch_event

# watchfiles groups changes: it yields once nothing new came for STEP_MS.
STEP_MS = 10
DEBOUNCE_MS = 200
_MARKER = "watch-ready-"
_MARKER_PATH = f"{STAGING_DIR}/{_MARKER}"


@dataclass(frozen=True)
class LocalEvent:
    """A local path changed."""

    path: str


@dataclass(frozen=True)
class RemoteEvent:
    """A pod path changed (``new_dir``: a directory appeared; list what it holds)."""

    path: str
    new_dir: bool = False
    is_dir: bool = False


@dataclass(frozen=True)
class WatcherEnded:
    """A watcher stopped (its exec stream dropped): restart and catch up."""

    side: str
    detail: str = ""


Event = LocalEvent | RemoteEvent | WatcherEnded


class LocalWatcher:
    """Watch the local workspace in a thread."""

    def __init__(self, root: Path, events: queue.Queue[Event]) -> None:
        self.root = root
        self.events = events
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="local-watch")

    def start(self, timeout: float) -> None:
        """Start watching; return once the watcher sees changes (a marker file's event)."""
        self.thread.start()
        staging = staging_dir(self.root)
        marker = staging / f"{_MARKER}{os.getpid()}"
        deadline = time.monotonic() + timeout
        try:
            while not self.ready.is_set():
                marker.write_bytes(b"")  # until the watcher reports it, watches are not set up
                if time.monotonic() > deadline or self.stop.is_set():
                    raise PaudeError("the local file watcher did not start")
                self.ready.wait(0.05)
        finally:
            marker.unlink(missing_ok=True)

    def _run(self) -> None:
        import watchfiles

        prefix = str(self.root.resolve()) + "/"
        try:
            for changes in watchfiles.watch(
                self.root, watch_filter=None, step=STEP_MS, debounce=DEBOUNCE_MS,
                stop_event=self.stop, rust_timeout=1000, yield_on_timeout=False,
            ):
                for _change, full in changes:
                    path = full[len(prefix):]
                    if path.startswith(_MARKER_PATH):
                        self.ready.set()
                    elif full.startswith(prefix):
                        self.events.put(LocalEvent(path))
        except Exception as err:
            self.events.put(WatcherEnded("local", str(err)))
            return
        if not self.stop.is_set():
            self.events.put(WatcherEnded("local", "watch ended"))


class RemoteWatcher:
    """Stream the pod's inotify events over an exec in a thread."""

    def __init__(self, transport: ExecTransport, events: queue.Queue[Event]) -> None:
        self.transport = transport
        self.events = events
        self.ready = threading.Event()
        self.pipe: Pipe | None = None
        self._stderr: list[str] = []

    def start(self) -> None:
        """Start the pod's watcher; ``ready`` is set once its watches are in place."""
        self.pipe = Pipe(self.transport.watch_argv())
        threading.Thread(target=self._read_stderr, daemon=True, name="remote-watch-err").start()
        threading.Thread(target=self._read_events, daemon=True, name="remote-watch").start()

    def stop(self) -> None:
        """Stop the pod's watcher (its exec ends; inotifywait dies with the stream)."""
        if self.pipe:
            self.pipe.kill()

    def _read_stderr(self) -> None:
        assert self.pipe
        for line in self.pipe.stderr:
            text = line.decode(errors="replace").strip()
            if text == WATCH_READY:
                self.ready.set()
            elif not text.startswith("Setting up watches"):
                self._stderr.append(text)

    def _read_events(self) -> None:
        assert self.pipe
        buf = b""
        while chunk := self.pipe.stdout.read1(65536):  # type: ignore[attr-defined]
            buf += chunk
            *items, buf = buf.split(b"\0")
            for raw in items:
                got = parse_watch_event(raw, self.transport.root)
                if got:
                    path, is_dir, created = got
                    self.events.put(RemoteEvent(path, new_dir=is_dir and created, is_dir=is_dir))
        rc = self.pipe.wait(10)
        self.events.put(WatcherEnded("remote", f"exit {rc}: {' '.join(self._stderr[-3:])}"))
