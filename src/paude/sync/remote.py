"""The pod's side, over the exec stream: scan, pull (tar out), push (tar in), delete.

Nothing read from the pod is trusted: a tar member is taken only if it is a
clean relative path that was asked for, and only files, directories and
symlinks are kept (hard links are dereferenced by the pod's tar; devices
and fifos are dropped).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from paude.errors import PaudeError
from paude.runner.pipes import Pipe
from paude.sync.local import PERMISSION_BITS, digest_bytes
from paude.sync.paths import is_clean_path
from paude.sync.state import Entry, Kind, RemoteStat
from paude.sync.transport import (
    DELETE_DIRS_SCRIPT,
    DELETE_FILES_SCRIPT,
    PULL_SCRIPT,
    PUSH_SCRIPT,
    ExecTransport,
    parse_scan,
)

TIMEOUT_STEP = 600.0
_CHUNK = 1 << 20
_KINDS = {"f": Kind.FILE, "d": Kind.DIR, "l": Kind.LINK}


class TransportError(PaudeError):
    """The exec stream failed or dropped (the sync retries and catches up)."""


@dataclass(frozen=True)
class RemoteItem:
    """A pod path as a scan or a pull saw it (``staged``: its bytes, for a pulled file)."""

    entry: Entry
    stat: RemoteStat | None
    link: str = ""
    staged: Path | None = None


@dataclass(frozen=True)
class PushItem:
    """A local path to send: its kind, and the link target for a symlink."""

    path: str
    full: Path


def _finish(pipe: Pipe, what: str) -> None:
    rc = pipe.wait(TIMEOUT_STEP)
    err = pipe.stderr.read().decode(errors="replace")
    if rc != 0:
        raise TransportError(f"{what} in the pod failed (exit {rc}): {err.strip()[-500:]}",
                             hint="Check the session with: paude sessions")


class Remote:
    """Run the sync's steps in the pod through ``transport``."""

    def __init__(self, transport: ExecTransport) -> None:
        self.transport = transport

    def scan(self, start: str = "") -> dict[str, RemoteItem]:
        """List the pod's tree (or ``start``'s subtree) without reading any file."""
        pipe = Pipe(self.transport.scan_argv(start))
        data = pipe.stdout.read()
        _finish(pipe, "listing the workspace")
        found = {}
        for path, kind, mode, size, mtime, link in parse_scan(data):
            if kind not in _KINDS or not is_clean_path(path):
                continue
            k = _KINDS[kind]
            digest = digest_bytes(link.encode()) if k is Kind.LINK else ""
            entry = Entry(k, 0 if k is Kind.LINK else mode & PERMISSION_BITS, digest)
            found[path] = RemoteItem(entry, RemoteStat(size, mtime) if k is Kind.FILE else None,
                                     link)
        return found

    def pull(self, paths: Iterable[str], staging: Path) -> dict[str, RemoteItem]:
        """Fetch ``paths`` from the pod; files land in ``staging``. Absent paths are missing."""
        wanted = sorted(set(paths))
        if not wanted:
            return {}
        pipe = Pipe(self.transport.argv(PULL_SCRIPT), stdin=True)
        feeder = threading.Thread(target=_feed, args=(pipe.stdin, wanted), daemon=True)
        feeder.start()
        got: dict[str, RemoteItem] = {}
        try:
            with tarfile.open(fileobj=pipe.stdout, mode="r|") as tar:
                for member in tar:
                    item = _take(member, tar, set(wanted), staging)
                    if item:
                        got[member.name] = item
        except (tarfile.TarError, OSError) as err:
            pipe.kill()
            raise TransportError(f"reading files from the pod failed: {err}") from err
        feeder.join()
        _finish(pipe, "reading files")
        return got

    def push(self, items: list[PushItem], progress: Callable[[int], None] | None = None,
             ) -> dict[str, tuple[Entry, RemoteStat | None, os.stat_result]]:
        """Send ``items`` to the pod as one tar; return what was sent, per path."""
        if not items:
            return {}
        pipe = Pipe(self.transport.argv(PUSH_SCRIPT), stdin=True)
        sent: dict[str, tuple[Entry, RemoteStat | None, os.stat_result]] = {}
        try:
            with tarfile.open(fileobj=pipe.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for n, item in enumerate(items, 1):
                    got = _add(tar, item)
                    if got:
                        sent[item.path] = got
                    if progress:
                        progress(n)
            pipe.stdin.close()
        except (OSError, tarfile.TarError) as err:
            pipe.kill()
            raise TransportError(f"sending files to the pod failed: {err}") from err
        _finish(pipe, "writing files")
        return sent

    def delete(self, files: list[str], dirs: list[str]) -> None:
        """Delete ``files`` (and links), then ``dirs`` when empty, children first."""
        for script, paths in ((DELETE_FILES_SCRIPT, files), (DELETE_DIRS_SCRIPT, dirs)):
            if paths:
                pipe = Pipe(self.transport.argv(script), stdin=True)
                try:
                    _feed(pipe.stdin, paths)
                except OSError as err:
                    pipe.kill()
                    raise TransportError(f"deleting files in the pod failed: {err}") from err
                _finish(pipe, "deleting files")


def _feed(stream: IO[bytes], paths: list[str]) -> None:
    try:
        for path in paths:
            stream.write(path.encode("utf-8", "surrogateescape") + b"\0")
    finally:
        with contextlib.suppress(OSError):  # the reader died: its exit code reports it
            stream.close()


def _take(member: tarfile.TarInfo, tar: tarfile.TarFile, wanted: set[str],
          staging: Path) -> RemoteItem | None:
    """Return one pulled member as an item (files staged), or None to drop it."""
    if member.name not in wanted or not is_clean_path(member.name):
        return None
    mode = member.mode & PERMISSION_BITS
    if member.isdir():
        return RemoteItem(Entry(Kind.DIR, mode), None)
    if member.issym():
        return RemoteItem(Entry(Kind.LINK, 0, digest_bytes(member.linkname.encode())), None,
                          member.linkname)
    if not member.isreg():
        return None
    src = tar.extractfile(member)
    assert src is not None
    fd, name = tempfile.mkstemp(dir=staging, prefix="pull-")
    h = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    stat = RemoteStat(member.size, float(member.mtime))
    return RemoteItem(Entry(Kind.FILE, mode, h.hexdigest()), stat, staged=Path(name))


class _Hashing(io.RawIOBase):
    """Read a file while hashing exactly the bytes sent."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.h.update(data)
        return data


def _add(tar: tarfile.TarFile, item: PushItem,
         ) -> tuple[Entry, RemoteStat | None, os.stat_result] | None:
    """Add one local path to the push tar; None if it vanished meanwhile."""
    try:
        st = os.lstat(item.full)
        info = tarfile.TarInfo(item.path)
        info.mtime = int(st.st_mtime)  # GNU headers: whole seconds, as the pod then reports
        info.mode = st.st_mode & PERMISSION_BITS
        if os.path.islink(item.full):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(item.full)
            tar.addfile(info)
            return Entry(Kind.LINK, 0, digest_bytes(info.linkname.encode())), None, st
        if os.path.isdir(item.full):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
            return Entry(Kind.DIR, info.mode), None, st
        fd = os.open(item.full, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        info.size = st.st_size
        reader = _Hashing(f)
        tar.addfile(info, reader)
    entry = Entry(Kind.FILE, info.mode, reader.h.hexdigest())
    return entry, RemoteStat(st.st_size, float(info.mtime)), st
