"""The sync's one small interface, and the built-in engine behind it."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from paude.sync import local
from paude.sync.daemon import SyncFiles, SyncSpec, held_lock, running_pid, spawn, stop
from paude.sync.engine import Engine, Progress, RoundResult
from paude.sync.remote import Remote
from paude.sync.state import Index, load_index, write_atomic
from paude.sync.watch import WatcherEnded

MAX_ROUNDS = 5  # ``sync_now`` repeats rounds until one leaves both sides agreeing


class SyncEngine(Protocol):
    """Keep a session's workspace in sync with the local one.

    ``start`` and ``stop`` run and end the background sync (``start`` also
    restarts one that died); ``sync_now`` syncs in the foreground until both
    sides agree; ``status`` reports without changing anything.
    """

    def start(self) -> bool:
        """REQUIRED. Start the background sync unless it runs; say whether it started."""
        ...

    def stop(self) -> bool:
        """REQUIRED. Stop the background sync after its current round; say whether it ran."""
        ...

    def sync_now(self, *, force: bool = False, progress: Progress | None = None) -> RoundResult:
        """REQUIRED. Sync both ways now until both sides agree (``force``: local overwrites)."""
        ...

    def status(self) -> dict[str, Any]:
        """REQUIRED. Return the stable ``paude sync --status --json`` shape."""
        ...


class BuiltinSync:
    """The built-in engine: tar over the exec stream, inotify in the pod, watchfiles here."""

    def __init__(self, spec: SyncSpec) -> None:
        self.spec = spec
        self.files = SyncFiles.of(spec.session)

    def start(self) -> bool:
        """Start the background sync (one per session) unless it runs."""
        return spawn(self.files, self.spec)

    def stop(self) -> bool:
        """Stop the background sync."""
        return stop(self.files)

    def sync_now(self, *, force: bool = False, progress: Progress | None = None) -> RoundResult:
        """Pause the background sync, run rounds until both sides agree, resume it.

        A round that only sent local files, each whole (an initial sync),
        settles it: a second full scan of both trees would find nothing.
        """
        was_running = self.stop()
        write_atomic(self.files.spec, json.dumps(self.spec.to_json(), indent=1))
        total = RoundResult()
        try:
            with held_lock(self.files):
                engine = build_engine(self.spec, self.files)
                for _ in range(MAX_ROUNDS):
                    result = engine.full_round(force=force, progress=progress)
                    _add(total, result)
                    _record(self.files, "sync", result, engine.index)
                    if result.settled:
                        break
        finally:
            if was_running:
                self.start()
        return total

    def status(self) -> dict[str, Any]:
        """Return state, last sync each way, pending local changes, conflicts and errors."""
        return build_status(self.files, self.spec)


def build_engine(spec: SyncSpec, files: SyncFiles) -> Engine:
    """Return the engine for ``spec``, with the index saved in ``files``."""
    return Engine(spec.workspace, Remote(spec.transport), spec.compiled_excludes(),
                  index=load_index(files.index), index_path=files.index)


def _add(total: RoundResult, r: RoundResult) -> None:
    total.pushed += r.pushed
    total.pulled += r.pulled
    total.deleted_local += r.deleted_local
    total.deleted_remote += r.deleted_remote
    total.conflicts += r.conflicts
    total.unsent += r.unsent
    total.new_volume |= r.new_volume


def _record(files: SyncFiles, kind: str, r: RoundResult, index: Index,
            error: str | None = None) -> None:
    """Fold one round into the status file."""
    data = files.read_status()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data["rounds"] = data.get("rounds", 0) + 1
    data["last_round"] = now
    data["last_round_kind"] = kind
    data["paths"] = len(index.records)
    if r.pushed or r.deleted_remote:
        data["last_push"] = now
    if r.pulled or r.deleted_local:
        data["last_pull"] = now
    data["conflicts"] = (data.get("conflicts") or []) + r.conflicts
    data["last_error"] = error
    files.write_status(data)


def build_status(files: SyncFiles, spec: SyncSpec) -> dict[str, Any]:
    """Return the status of a session's sync (reads the local tree, never the pod)."""
    data = files.read_status()
    pid = running_pid(files)
    index = load_index(files.index)
    scanned = local.scan(spec.workspace, spec.compiled_excludes(), index)
    pending = sorted(p for p, (e, _) in scanned.items() if not e.same(index.base(p)))
    pending += sorted(p for p in index.records if p not in scanned)
    return {
        "session": spec.session,
        "state": "running" if pid else "stopped",
        "pid": pid if pid and pid > 0 else None,
        "last_push": data.get("last_push"),
        "last_pull": data.get("last_pull"),
        "last_round": data.get("last_round"),
        "pending_local": pending,
        "conflicts": data.get("conflicts", []),
        "last_error": data.get("last_error"),
        "paths": len(index.records),
    }


def status_of(session: str) -> dict[str, Any] | None:
    """Return the sync status of ``session``, or None when it never synced here."""
    files = SyncFiles.of(session, create=False)
    if not files.spec.exists():
        return None
    return build_status(files, files.read_spec())


def run_daemon(files: SyncFiles) -> int:
    """Run the background sync of ``files``'s session until SIGTERM."""
    from paude.sync.service import Service

    spec = files.read_spec()
    with held_lock(files):
        engine = build_engine(spec, files)
        service = Service(
            engine,
            on_round=lambda kind, r: _record(files, kind, r, engine.index),
            on_error=lambda msg: _error(files, msg),
        )

        def _stop(_sig: int, _frame: Any) -> None:
            service.stop.set()
            service.events.put(WatcherEnded("stop"))

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        service.run()
    return 0


def _error(files: SyncFiles, message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)
    data = files.read_status()
    data["last_error"] = message
    files.write_status(data)


Reporter = Callable[[str], None]
