"""The continuous sync: watch both sides, run rounds, recover from faults.

Recovery is one rule: whenever a watcher or a step fails, or the machine
was asleep, restart the watchers and run a full round (scan both sides
against the index). Waits are condition waits (events, or a stop request),
with backoff only between failed attempts.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from paude.errors import PaudeError
from paude.sync.engine import Engine, RoundResult
from paude.sync.watch import Event, LocalEvent, LocalWatcher, RemoteEvent, RemoteWatcher

QUIET_S = 0.015  # after an event, gather what follows within this much quiet
MAX_BATCH_S = 0.25  # but never hold a batch longer
READY_TIMEOUT_S = 120.0
IDLE_CHECK_S = 30.0  # catch a stalled stream or a sleep: full round when idle this long
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_SLEEP_JUMP_S = 5.0
_RESTART = "restart"
_RESCAN = "rescan"


def _boottime_drift() -> float:
    """Seconds the machine spent suspended so far (boot time minus monotonic time)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()


class Service:
    """Keep one workspace in sync until ``stop`` is set."""

    def __init__(self, engine: Engine, *, on_round: Callable[[str, RoundResult], None],
                 on_error: Callable[[str], None]) -> None:
        self.engine = engine
        self.on_round = on_round
        self.on_error = on_error
        self.events: queue.Queue[Event] = queue.Queue()
        self.stop = threading.Event()
        self._remote: RemoteWatcher | None = None
        self._local: LocalWatcher | None = None

    def run(self) -> None:
        """Sync until stopped: full round at start and after every fault."""
        failures = 0
        todo = _RESTART
        drift = _boottime_drift()
        while not self.stop.is_set():
            try:
                if todo == _RESTART:
                    self._restart_watchers()
                self.on_round("full", self.engine.full_round())
                todo = self._serve_events()
                failures = 0
            except PaudeError as err:
                self.on_error(err.message)
                todo = _RESTART
                self.stop.wait(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
                failures += 1
            if _boottime_drift() - drift > _SLEEP_JUMP_S:
                drift, todo = _boottime_drift(), _RESTART  # woke from sleep: streams are stale
        self._stop_watchers()

    def _restart_watchers(self) -> None:
        self._stop_watchers()
        self.events = queue.Queue()
        self._local = LocalWatcher(self.engine.root, self.events)
        self._remote = RemoteWatcher(self.engine.remote.transport, self.events)
        self._remote.start()
        self._local.start(READY_TIMEOUT_S)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._remote.ready.wait(0.05):
            pipe = self._remote.pipe
            ended = pipe is not None and pipe.poll() is not None
            if self.stop.is_set() or time.monotonic() > deadline or ended:
                raise PaudeError(
                    "the pod's file watcher did not start",
                    hint="Is inotify-tools in the agent image? See: paude sync --status")

    def _stop_watchers(self) -> None:
        if self._local:
            self._local.stop.set()
        if self._remote:
            self._remote.stop()

    def _serve_events(self) -> str:
        """Run incremental rounds until a watcher ends (restart) or idle (rescan)."""
        while not self.stop.is_set():
            try:
                first = self.events.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                return _RESCAN
            batch = self._gather(first)
            if batch is None:
                return _RESTART
            local_paths, remote_paths, new_dirs = batch
            result = self.engine.incremental_round(local_paths, remote_paths, new_dirs)
            self.on_round("events", result)
        return _RESCAN

    def _gather(self, first: Event) -> tuple[set[str], set[str], set[str]] | None:
        """Collect events until a short quiet; None if a watcher ended."""
        local_paths: set[str] = set()
        remote_paths: set[str] = set()
        new_dirs: set[str] = set()
        start = time.monotonic()
        event: Event | None = first
        while event is not None:
            if isinstance(event, LocalEvent):
                local_paths.add(event.path)
            elif isinstance(event, RemoteEvent):
                (new_dirs if event.new_dir else remote_paths).add(event.path)
            else:
                if not self.stop.is_set():
                    self.on_error(f"the {event.side} watcher stopped ({event.detail}); catching up")
                return None
            if time.monotonic() - start > MAX_BATCH_S:
                break
            try:
                event = self.events.get(timeout=QUIET_S)
            except queue.Empty:
                event = None
        return local_paths, remote_paths, new_dirs
