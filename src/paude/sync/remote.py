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
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from paude.errors import PaudeError
from paude.runner.pipes import Pipe
from paude.sync.local import PERMISSION_BITS, digest_bytes
from paude.sync.paths import is_clean_path
from paude.sync.state import Entry, Kind, RemoteStat
from paude.sync.transport import SERVER_READY, ExecTransport, parse_scan

TIMEOUT_STEP = 600.0
TIMEOUT_START = 60.0
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


class Channel:
    """The long-lived step server in the pod, started on first use and after a drop."""

    def __init__(self, transport: ExecTransport) -> None:
        self.transport = transport
        self._pipe: Pipe | None = None

    def close(self) -> None:
        """End the server's exec (the next request starts a new one)."""
        if self._pipe:
            self._pipe.kill()
            self._pipe = None

    def _open(self) -> Pipe:
        if self._pipe and self._pipe.poll() is None:
            return self._pipe
        self.close()
        pipe = Pipe(self.transport.server_argv(), stdin=True)
        self._pipe = pipe
        with self._watchdog(TIMEOUT_START):
            line = pipe.stdout.readline()
        if line != SERVER_READY:
            err = b"" if pipe.poll() is None else pipe.stderr.read()
            self.close()
            raise TransportError(
                f"could not start the sync in the pod: {err.decode(errors='replace')[-300:]}",
                hint="Check the session with: paude sessions")
        return pipe

    @contextlib.contextmanager
    def _watchdog(self, seconds: float) -> Iterator[None]:
        """Kill the exec if a step stalls (a dead stream after sleep blocks forever)."""
        pipe = self._pipe
        timer = threading.Timer(seconds, pipe.kill) if pipe else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            yield
        except (OSError, ValueError, tarfile.TarError) as err:
            self.close()
            raise TransportError(f"the exec stream to the pod dropped: {err}") from err
        finally:
            if timer:
                timer.cancel()

    @contextlib.contextmanager
    def request(self, cmd: str, payload: bytes | IO[bytes], size: int | None = None,
                ) -> Iterator[_Bounded]:
        """Send one request; yield its output (read it all); raise on a failed step."""
        pipe = self._open()
        with self._watchdog(TIMEOUT_STEP):
            n = len(payload) if isinstance(payload, bytes) else size
            pipe.stdin.write(f"{cmd} {n}\n".encode())
            if isinstance(payload, bytes):
                pipe.stdin.write(payload)
            else:
                shutil.copyfileobj(payload, pipe.stdin, _CHUNK)
            pipe.stdin.flush()
            header = pipe.stdout.readline().split()
            if len(header) != 3:
                ended = pipe.poll() is not None
                raise OSError(f"no reply ({pipe.stderr.read() if ended else b''!r})")
            rc, out_len, err_len = (int(x) for x in header)
            out = _Bounded(pipe.stdout, out_len)
            yield out
            out.drain()
            err = pipe.stdout.read(err_len).decode(errors="replace")
        if rc != 0:
            raise TransportError(f"{cmd} in the pod failed (exit {rc}): {err.strip()[-500:]}",
                                 hint="Check the session with: paude sessions")


class _Bounded(io.RawIOBase):
    """Read at most ``left`` bytes of a stream (one reply's output)."""

    def __init__(self, f: IO[bytes], left: int) -> None:
        self.f = f
        self.left = left

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if size < 0 else min(size, self.left)
        data = self.f.read(want)
        if not data:
            raise OSError("the exec stream ended mid-reply")
        self.left -= len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def drain(self) -> None:
        while self.left > 0:
            self.read(_CHUNK)


class Remote:
    """Run the sync's steps in the pod through ``transport``."""

    def __init__(self, transport: ExecTransport) -> None:
        self.transport = transport
        self.channel = Channel(transport)

    def scan(self, start: str = "") -> dict[str, RemoteItem]:
        """List the pod's tree (or ``start``'s subtree) without reading any file."""
        with self.channel.request("scan", start.encode("utf-8", "surrogateescape")) as out:
            data = out.read()
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
        wanted = set(paths)
        if not wanted:
            return {}
        got: dict[str, RemoteItem] = {}
        with (self.channel.request("pull", _nul_list(sorted(wanted))) as out,
              tarfile.open(fileobj=out, mode="r|") as tar):
            for member in tar:
                item = _take(member, tar, wanted, staging)
                if item:
                    got[member.name] = item
        return got

    def push(self, items: list[PushItem], progress: Callable[[int], None] | None = None,
             ) -> dict[str, tuple[Entry, RemoteStat | None, os.stat_result]]:
        """Send ``items`` to the pod as one tar; return what was sent, per path."""
        if not items:
            return {}
        sent: dict[str, tuple[Entry, RemoteStat | None, os.stat_result]] = {}
        with tempfile.TemporaryFile() as spool:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for n, item in enumerate(items, 1):
                    got = _add(tar, item)
                    if got:
                        sent[item.path] = got
                    if progress:
                        progress(n)
            size = spool.tell()
            spool.seek(0)
            with self.channel.request("push", spool, size):
                pass
        return sent

    def delete(self, files: list[str], dirs: list[str]) -> None:
        """Delete ``files`` (and links), then ``dirs`` when empty, children first."""
        for cmd, paths in (("delf", files), ("deld", dirs)):
            if paths:
                with self.channel.request(cmd, _nul_list(paths)):
                    pass

    def close(self) -> None:
        """End the exec stream."""
        self.channel.close()


def _nul_list(paths: list[str]) -> bytes:
    return b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)


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
