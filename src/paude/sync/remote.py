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
import queue
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
from paude.sync.tarout import PushItem, Sent, TarWriter
from paude.sync.transport import SERVER_READY, ExecTransport, parse_scan

TIMEOUT_STEP = 600.0
TIMEOUT_START = 60.0
_CHUNK = 1 << 20
_QUEUED_CHUNKS = 4  # chunks made ahead of the stream (memory: about 4 MiB)
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


class Channel:
    """The long-lived step server in the pod, started on first use and after a drop."""

    def __init__(self, transport: ExecTransport) -> None:
        self.transport = transport
        self._pipe: Pipe | None = None
        self.volume = ""  # the pod workspace volume's id, from the server's ready line

    def close(self) -> None:
        """End the server's exec (the next request starts a new one)."""
        if self._pipe:
            self._pipe.kill()
            self._pipe = None

    def open(self) -> Pipe:
        """Return the running server's pipe, starting one when none runs."""
        if self._pipe and self._pipe.poll() is None:
            return self._pipe
        self.close()
        pipe = Pipe(self.transport.server_argv(), stdin=True)
        self._pipe = pipe
        with self._watchdog(TIMEOUT_START):
            line = pipe.stdout.readline()
        volume = line[len(SERVER_READY):].strip().decode(errors="replace")
        if not line.startswith(SERVER_READY) or not volume:
            err = b"" if pipe.poll() is None else pipe.stderr.read()
            self.close()
            raise TransportError(
                f"could not start the sync in the pod: {err.decode(errors='replace')[-300:]}",
                hint="Check the session with: paude sessions")
        self.volume = volume
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
    def request(self, cmd: str, payload: bytes) -> Iterator[_Bounded]:
        """Send one request; yield its output (read it all); raise on a failed step."""
        pipe = self.open()
        with self._watchdog(TIMEOUT_STEP):
            pipe.stdin.write(f"{cmd} {len(payload)}\n".encode())
            pipe.stdin.write(payload)
            pipe.stdin.flush()
            with self._reply(cmd) as out:
                yield out

    @contextlib.contextmanager
    def upload(self, cmd: str) -> Iterator[_Chunked]:
        """Send one request whose payload is written as it is made (see ``SERVER_SCRIPT``).

        The pod works on each chunk while the next is made here. If making
        the payload fails, the stream is closed (its framing is lost).
        """
        pipe = self.open()
        with self._watchdog(TIMEOUT_STEP):
            pipe.stdin.write(f"{cmd} 0\n".encode())
            chunks = _Chunked(pipe.stdin)
            try:
                yield chunks
                chunks.finish()
            except BaseException:
                self.close()
                chunks.close_writer()
                raise
            pipe.stdin.write(b"0\n")
            pipe.stdin.flush()
            with self._reply(cmd):
                pass

    @contextlib.contextmanager
    def _reply(self, cmd: str) -> Iterator[_Bounded]:
        """Read one reply (inside the watchdog): yield its output, raise on a failed step."""
        pipe = self._pipe
        assert pipe is not None
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


class _Chunked(io.RawIOBase):
    """Frame what is written as length-prefixed chunks of about ``_CHUNK`` bytes.

    A thread writes the chunks to the stream, so the next chunk is made
    here while the last one is still being written (a write to the exec's
    stdin blocks until the pod has read most of it). ``finish`` waits for
    every chunk and raises what the writing raised.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.buf = bytearray()
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUED_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_chunks, daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buf += data
        if len(self.buf) >= _CHUNK:
            self.send()
        return len(data)

    def send(self) -> None:
        """Queue what is buffered as one chunk (raise if writing failed)."""
        if self._error:
            raise OSError(f"writing to the pod failed: {self._error}")
        if self.buf:
            self._queue.put(b"%d\n" % len(self.buf) + self.buf)
            self.buf = bytearray()

    def finish(self) -> None:
        """Send the rest and wait until every chunk is written."""
        self.send()
        self.close_writer()
        if self._error:
            raise OSError(f"writing to the pod failed: {self._error}")

    def close_writer(self) -> None:
        """End the writing thread (after the chunks already queued)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _write_chunks(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:  # after a failure, only drain (never block the maker)
                try:
                    self.out.write(chunk)
                except BaseException as err:  # raised again in the maker's thread
                    self._error = err


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

    def volume(self) -> str:
        """Return the id of the pod's workspace volume (starting the exec if none runs)."""
        self.channel.open()
        return self.channel.volume

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
             ) -> dict[str, Sent]:
        """Send ``items`` to the pod as one tar, streamed; return what was sent, per path.

        A file that changed while it was read is returned without a local
        stat (see ``TarWriter.add``), so the next round sends it again.
        """
        if not items:
            return {}
        sent: dict[str, Sent] = {}
        with self.channel.upload("push") as stream:
            tar = TarWriter(stream.write)
            for n, item in enumerate(items, 1):
                got = tar.add(item)
                if got:
                    sent[item.path] = got
                if progress:
                    progress(n)
            tar.close()
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
    rstat = RemoteStat(member.size, float(member.mtime))
    return RemoteItem(Entry(Kind.FILE, mode, h.hexdigest()), rstat, staged=Path(name))
