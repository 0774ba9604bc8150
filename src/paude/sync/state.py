"""What both sides agreed on at the last sync: entries, stat caches, the index file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

INDEX_VERSION = 2  # 2: the index names the pod volume it is about
# Remote mtimes come from find's %T@ or a tar header: equal within this.
_MTIME_SLACK = 1e-6
# The digest of a local file not read yet (never equal to a sha256, never saved).
UNREAD = "unread"


class Kind(StrEnum):
    """What a path is (special files never sync)."""

    FILE = "f"
    LINK = "l"
    DIR = "d"


@dataclass(frozen=True)
class Entry:
    """A path's content: kind, permission bits (never set-uid) and a digest."""

    kind: Kind
    mode: int = 0
    digest: str = ""  # sha256 of a file's bytes, or a link's target text

    def same(self, other: Entry | None) -> bool:
        """Say whether ``other`` has the same content (directories: same kind)."""
        if other is None or other.kind != self.kind:
            return False
        if self.kind is Kind.DIR:
            return True
        if UNREAD in (self.digest, other.digest):
            return False
        return self.digest == other.digest and self.mode == other.mode


@dataclass(frozen=True)
class RemoteStat:
    """A pod file's size and mtime, to tell in a scan whether it changed."""

    size: int
    mtime: float

    def matches(self, other: RemoteStat | None) -> bool:
        """Say whether ``other`` is the same stat."""
        return (
            other is not None
            and other.size == self.size
            and abs(other.mtime - self.mtime) < _MTIME_SLACK
        )


LocalStat = tuple[int, int, int, int]  # st_mtime_ns, st_size, st_mode, st_ino


@dataclass
class Record:
    """One agreed path: its entry and each side's last seen stat."""

    entry: Entry
    local: LocalStat | None = None
    remote: RemoteStat | None = None


@dataclass
class Index:
    """Every agreed path (saved after each round, so a restart catches up)."""

    records: dict[str, Record] = field(default_factory=dict)
    volume: str = ""  # the id of the pod workspace volume the records were agreed with

    def base(self, path: str) -> Entry | None:
        """Return the agreed entry of ``path``."""
        rec = self.records.get(path)
        return rec.entry if rec else None

    def to_text(self, records_text: str | None = None) -> str:
        """Return the index as JSON text (``records_text``: its records, dumped already)."""
        if records_text is None:
            records_text = dump_records(self.records)
        return (f'{{"version":{INDEX_VERSION},"volume":{json.dumps(self.volume)},'
                f'"records":{records_text}}}')

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Index:
        """Read what ``to_json`` wrote (an unknown version reads as empty)."""
        if data.get("version") != INDEX_VERSION:
            return cls()
        records = {}
        for path, (kind, mode, digest, local, remote) in data["records"].items():
            records[path] = Record(
                Entry(Kind(kind), mode, digest),
                tuple(local) if local else None,
                RemoteStat(remote[0], remote[1]) if remote else None,
            )
        return cls(records, str(data.get("volume", "")))


def dump_records(records: dict[str, Record]) -> str:
    """Return the JSON text of ``records``, as ``Index.from_json`` reads them."""
    return json.dumps({
        p: [r.entry.kind, r.entry.mode, r.entry.digest, r.local,
            (r.remote.size, r.remote.mtime) if r.remote else None]
        for p, r in records.items()
    }, separators=(",", ":"))


def load_index(path: Path) -> Index:
    """Read the index at ``path`` (a missing or torn file reads as empty)."""
    try:
        return Index.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return Index()


def save_index(index: Index, path: Path, *, records_text: str | None = None) -> None:
    """Write the index atomically (a kill mid-write leaves the old one)."""
    write_atomic(path, index.to_text(records_text))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
