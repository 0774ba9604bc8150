"""One sync round, full (scan both sides) or incremental (the paths events named).

A round reads both sides, plans with ``rounds.plan_round`` and applies the
plan: pod files are pulled into staging, then renamed into place; local
files are pushed as one tar. The index is saved after every round, so a
killed sync catches up from the last agreed state, and nothing is applied
twice (every step compares content, never replays events).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paude.sync import local
from paude.sync.paths import Excludes
from paude.sync.remote import Remote, RemoteItem
from paude.sync.rounds import Action, Decision, plan_round
from paude.sync.state import (
    UNREAD,
    Entry,
    Index,
    Kind,
    LocalStat,
    Record,
    dump_records,
    save_index,
)
from paude.sync.tarout import PushItem, Sent

Progress = Callable[[int, int], None]  # done, total (0: not known yet)
LocalSide = dict[str, tuple[Entry, LocalStat] | None]
RemoteSide = dict[str, RemoteItem | None]


@dataclass
class RoundResult:
    """What one round did."""

    pushed: int = 0
    pulled: int = 0
    deleted_local: int = 0
    deleted_remote: int = 0
    conflicts: list[str] = field(default_factory=list)
    unsent: int = 0  # pushes not sent whole (vanished, unsafe, or changed while read)
    new_volume: bool = False  # the index was about another pod volume: synced as a first sync

    @property
    def changed(self) -> int:
        """How many paths the round changed on either side."""
        return self.pushed + self.pulled + self.deleted_local + self.deleted_remote

    @property
    def settled(self) -> bool:
        """Say whether a round left both sides agreeing, so another would change nothing.

        True when it changed nothing, or only sent local paths, each whole:
        the pod then holds exactly what the index records. (A change made
        while the round ran is the next round's, as for any round.)
        """
        only_whole_pushes = (self.pulled == self.deleted_local == self.deleted_remote
                             == self.unsent == 0 and not self.conflicts)
        return self.changed == 0 or only_whole_pushes


class Engine:
    """Sync a local workspace with the pod's, round by round."""

    def __init__(self, workspace: Path, remote: Remote, excludes: Excludes, *,
                 index: Index, index_path: Path | None = None) -> None:
        self.root = workspace
        self.remote = remote
        self.excludes = excludes
        self.index = index
        self.index_path = index_path

    def full_round(self, *, force: bool = False, progress: Progress | None = None,
                   ) -> RoundResult:
        """Compare both whole trees and converge them.

        With no records (a first sync) the local tree is first offered to the
        pod as it is walked: taken whole when the pod's workspace is empty,
        so the round is the push alone. Otherwise, scan both and plan.
        """
        if not self.index.records:
            first = self._first_push(progress)
            if first is not None:
                return first
        with ThreadPoolExecutor(1) as pool:
            scanned = pool.submit(self.remote.scan)
            local_side: LocalSide = dict(local.scan(self.root, self.excludes, self.index))
            listing = {p: i for p, i in scanned.result().items()
                       if not self.excludes.is_excluded(p, is_dir=i.entry.kind is Kind.DIR)}
        new_volume = not self._same_volume()
        for path, item in listing.items():  # the scan reads no file the index lacks
            mine = local_side.get(path)
            if mine and mine[0].digest == UNREAD and item.entry.kind is Kind.FILE:
                local_side[path] = local.read_entry(self.root, path)
        to_pull = [p for p, i in listing.items() if i.entry.kind is Kind.FILE
                   and not self._unchanged_remote(p, i)]
        pulled = self.remote.pull(to_pull, local.staging_dir(self.root))
        remote_side: RemoteSide = {}
        for path, item in listing.items():
            if path in pulled or path not in to_pull:
                remote_side[path] = pulled.get(path) or self._as_base(path, item)
        paths = set(local_side) | set(remote_side) | set(self.index.records)
        for path in [p for p in self.index.records if self.excludes.is_excluded(p)]:
            del self.index.records[path]
            paths.discard(path)
        result = self._apply(paths, local_side, remote_side, force=force, progress=progress)
        result.new_volume = new_volume
        return result

    def incremental_round(self, local_dirty: Iterable[str], remote_dirty: Iterable[str],
                          remote_new_dirs: Iterable[str] = ()) -> RoundResult:
        """Converge only the paths that events named (and what lies under new directories)."""
        if not self._same_volume():
            return self.full_round()
        lpaths = self._expand_local({p for p in local_dirty if not self.excludes.is_excluded(p)})
        rpaths = {p for p in remote_dirty if not self.excludes.is_excluded(p)}
        for start in remote_new_dirs:
            if not self.excludes.is_excluded(start, is_dir=True):
                rpaths |= set(self.remote.scan(start))
        rpaths |= {c for p in set(rpaths) for c in self._children(p)}
        rpaths = {p for p in rpaths if not self.excludes.is_excluded(p)}
        pulled = self.remote.pull(rpaths, local.staging_dir(self.root)) if rpaths else {}
        paths = lpaths | rpaths
        local_side: LocalSide = {p: local.read_entry(self.root, p, self.index) for p in paths}
        remote_side: RemoteSide = {}
        for path in paths:
            rec = self.index.records.get(path)
            if path in rpaths:
                remote_side[path] = pulled.get(path)
            elif rec:
                remote_side[path] = RemoteItem(rec.entry, rec.remote)
        return self._apply(paths, local_side, remote_side)

    def _first_push(self, progress: Progress | None) -> RoundResult | None:
        """Send the whole tree into an empty pod workspace; None if it is not empty.

        The index's text is made while the pod extracts the stream's tail,
        and saved once the pod has said it holds the whole tree.
        """
        report = (lambda n: progress(n, 0)) if progress else None  # 0: total not known
        made: dict[str, Any] = {}

        def built(sent: dict[str, Sent]) -> None:
            made["records"] = _records_of(sent)
            made["text"] = dump_records(made["records"])

        sent = self.remote.push_new(self.root, self.excludes, report, built)
        if sent is None:
            return None
        self.index = Index(made["records"], self.remote.volume())
        result = RoundResult(pushed=len(sent),
                             unsent=sum(st is None for _e, _r, st in sent.values()))
        if self.index_path:
            save_index(self.index, self.index_path, records_text=made["text"])
        return result

    def _same_volume(self) -> bool:
        """Say whether the index's records are about the pod's volume (else drop them).

        The records say what both sides agreed on one volume. Another one (the
        PVC was deleted and made again: ``paude stop --force``, then ``paude``)
        is empty, and read with the old records that would mean every file was
        deleted in the pod, so every local file would be deleted too. Without
        records nothing is deleted: the round is a first sync. A first sync
        (no records yet) takes the volume's id.
        """
        volume = self.remote.volume()
        if self.index.volume == volume:
            return True
        first = not self.index.records
        self.index = Index(volume=volume)
        return first

    def _expand_local(self, paths: set[str]) -> set[str]:
        out = set(paths)
        for path in paths:
            got = local.read_entry(self.root, path, self.index)
            if got and got[0].kind is Kind.DIR:
                out |= set(local.walk(self.root, self.excludes, path))
            out |= set(self._children(path))
        return out

    def _children(self, path: str) -> list[str]:
        prefix = path + "/"
        return [p for p in self.index.records if p.startswith(prefix)]

    def _unchanged_remote(self, path: str, item: RemoteItem) -> bool:
        rec = self.index.records.get(path)
        return bool(rec and rec.remote and rec.entry.kind is Kind.FILE
                    and rec.entry.mode == item.entry.mode and rec.remote.matches(item.stat))

    def _as_base(self, path: str, item: RemoteItem) -> RemoteItem:
        rec = self.index.records.get(path)
        if item.entry.kind is Kind.FILE and rec:
            return RemoteItem(rec.entry, item.stat)
        return item

    def _apply(self, paths: set[str], local_side: LocalSide, remote_side: RemoteSide, *,
               force: bool = False, progress: Progress | None = None) -> RoundResult:
        base = {p: r.entry for p in paths if (r := self.index.records.get(p))}
        lents = {p: v[0] for p, v in local_side.items() if v}
        rents = {p: v.entry for p, v in remote_side.items() if v}
        decisions = plan_round(paths, base, lents, rents, force=force)
        result = RoundResult()
        pushes: list[PushItem] = []
        deletes: list[Decision] = []
        try:
            for d in decisions:
                self._note_conflict(d, remote_side.get(d.path), result)
                if d.action is Action.PUSH:
                    pushes.append(PushItem(d.path, self.root))
                elif d.action is Action.DELETE_REMOTE:
                    deletes.append(d)
                else:
                    self._apply_here(d, local_side.get(d.path), remote_side.get(d.path), result)
            self._push(pushes, result, progress)
            self._delete_remote(deletes, remote_side, result)
        finally:
            self._drop_staged(remote_side)
            if self.index_path:
                save_index(self.index, self.index_path)
        return result

    def _note_conflict(self, d: Decision, item: RemoteItem | None, result: RoundResult) -> None:
        if not d.conflict:
            return
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        line = f"{stamp} {d.path}: {d.conflict}"
        if d.keep_remote_copy and item and item.staged:
            kept = local.keep_conflict_copy(self.root, d.path, item.staged, stamp)
            line += f" (pod's copy: {kept})"
        local.log_conflict(self.root, line)
        result.conflicts.append(line)

    def _apply_here(self, d: Decision, mine: tuple[Entry, LocalStat] | None,
                    theirs: RemoteItem | None, result: RoundResult) -> None:
        records = self.index.records
        if d.action is Action.AGREE and mine and theirs:
            old = records.get(d.path)
            records[d.path] = Record(mine[0], mine[1], theirs.stat or (old.remote if old else None))
        elif d.action is Action.FORGET:
            records.pop(d.path, None)
        elif d.action is Action.DELETE_LOCAL:
            local.remove(self.root, d.path)
            records.pop(d.path, None)
            result.deleted_local += 1
        elif d.action is Action.PULL and theirs:
            stat = self._install(d.path, theirs)
            if stat is not None:
                records[d.path] = Record(theirs.entry, stat, theirs.stat)
                result.pulled += 1

    def _install(self, path: str, item: RemoteItem) -> LocalStat | None:
        try:
            if item.entry.kind is Kind.DIR:
                return local.install_dir(self.root, path, item.entry.mode)
            if item.entry.kind is Kind.LINK:
                return local.install_link(self.root, path, item.link)
            if item.staged is None or item.stat is None:
                return None
            return local.install_file(self.root, path, item.staged, mode=item.entry.mode,
                                      mtime=item.stat.mtime)
        except local.UnsafePathError as err:
            local.log_conflict(self.root, f"refused: {err.message}")
            return None

    def _push(self, pushes: list[PushItem], result: RoundResult,
              progress: Progress | None) -> None:
        total = len(pushes)
        report = (lambda n: progress(n, total)) if progress else None
        sent = self.remote.push(pushes, report)
        self._record_sent(sent, result)
        result.unsent += total - len(sent)

    def _record_sent(self, sent: dict[str, Sent], result: RoundResult) -> None:
        """Record what a push sent (a file changed while read: unsent, sent again later)."""
        self.index.records.update(_records_of(sent))
        result.unsent += sum(st is None for _e, _r, st in sent.values())
        result.pushed += len(sent)

    def _delete_remote(self, deletes: list[Decision], remote_side: RemoteSide,
                       result: RoundResult) -> None:
        dirs = [d.path for d in deletes
                if (r := remote_side.get(d.path)) and r.entry.kind is Kind.DIR]
        files = [d.path for d in deletes if d.path not in dirs]
        self.remote.delete(files, dirs)
        for d in deletes:
            self.index.records.pop(d.path, None)
            result.deleted_remote += 1

    @staticmethod
    def _drop_staged(remote_side: RemoteSide) -> None:
        for item in remote_side.values():
            if item and item.staged:
                item.staged.unlink(missing_ok=True)


def _records_of(sent: dict[str, Sent]) -> dict[str, Record]:
    """Return the records of what a push sent (no local stat: changed while read)."""
    return {path: Record(entry, local.local_stat(st) if st else None, rstat)
            for path, (entry, rstat, st) in sent.items()}
