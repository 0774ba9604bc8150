"""The exec stream to the pod's step server: requests, replies and streamed uploads.

One long-lived ``sh`` in the pod (``transport.SERVER_SCRIPT``) serves every
step; a stalled step is killed by a watchdog, a dropped stream raises
``TransportError`` and the next request starts a new server.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import queue
import tarfile
import threading
from collections.abc import Callable, Iterator
from typing import IO

from paude.errors import PaudeError
from paude.runner.pipes import Pipe
from paude.sync.transport import SERVER_READY, ExecTransport

TIMEOUT_STEP = 600.0
TIMEOUT_START = 60.0
CHUNK = 1 << 20
_QUEUED_CHUNKS = 16  # chunks made ahead of the stream (at most about 16 MiB)


class TransportError(PaudeError):
    """The exec stream failed or dropped (the sync retries and catches up)."""


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
        pipe = self._start()
        with self._watchdog(TIMEOUT_START):
            self._read_ready(pipe)
        return pipe

    def _start(self) -> Pipe:
        """Start the server's exec; its ready line is still to be read (``_read_ready``)."""
        self.close()
        self._pipe = Pipe(self.transport.server_argv(), stdin=True)
        # A 1 MiB pipe (Linux; 64 KiB by default) takes a whole chunk per write:
        # fewer wake-ups for the exec client reading it and for the writer.
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(self._pipe.stdin.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)
        return self._pipe

    def _read_ready(self, pipe: Pipe) -> None:
        """Read the server's ready line: it names the workspace volume."""
        line = pipe.stdout.readline()
        volume = line[len(SERVER_READY):].strip().decode(errors="replace")
        if not line.startswith(SERVER_READY) or not volume:
            err = b"" if pipe.poll() is None else pipe.stderr.read()
            self.close()
            raise TransportError(
                f"could not start the sync in the pod: {err.decode(errors='replace')[-300:]}",
                hint="Check the session with: paude sessions")
        self.volume = volume

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
    def upload(self, cmd: str, *, ask: bool = False) -> Iterator[_Chunked]:
        """Send one request whose payload is written as it is made (see ``SERVER_SCRIPT``).

        The pod works on each chunk while the next is made here. If making
        the payload fails, the stream is closed (its framing is lost).

        ``ask``: the server first answers whether it takes the payload
        (``pushnew``: only into an empty workspace). Nothing is written
        before that answer; a no makes ``refused`` true and the next write
        raise ``Refused`` (the request then ends with no payload). A server
        not running yet is started here without waiting: the payload is
        made while the exec starts, and the ready line is read before the
        answer.
        """
        fresh = not (self._pipe and self._pipe.poll() is None)
        pipe = self._start() if fresh and ask else self.open()
        first: Callable[[], bool] | None = None
        if ask:
            def first() -> bool:
                if fresh:  # within the start's own time limit
                    timer = threading.Timer(TIMEOUT_START, pipe.kill)
                    timer.daemon = True
                    timer.start()
                    try:
                        self._read_ready(pipe)
                    finally:
                        timer.cancel()
                return _answer(pipe.stdout.readline(), cmd)
        with self._watchdog(TIMEOUT_STEP):
            pipe.stdin.write(f"{cmd} 0\n".encode())
            pipe.stdin.flush()
            chunks = _Chunked(pipe.stdin, first)
            try:
                with contextlib.suppress(Refused):
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


class Refused(Exception):
    """The server refused an ``ask`` upload's payload: stop making it."""


def _answer(line: bytes, cmd: str) -> bool:
    """Read the server's answer to an ``ask`` upload: take it (go) or not (no)."""
    if line not in (b"go\n", b"no\n"):
        raise OSError(f"no answer to {cmd} ({line[-200:]!r})")
    return line == b"go\n"


class _Chunked(io.RawIOBase):
    """Frame what is written as length-prefixed chunks of about ``CHUNK`` bytes.

    A thread writes the chunks to the stream, so the next chunk is made
    here while the last one is still being written (a write to the exec's
    stdin blocks until the pod has read most of it). ``finish`` waits for
    every chunk and raises what the writing raised. ``first``, when given,
    runs in that thread before any chunk is written: false means drop them
    all (``refused``).
    """

    def __init__(self, out: IO[bytes], first: Callable[[], bool] | None = None) -> None:
        self.out = out
        self.buf = bytearray()
        self.refused = False
        self._first = first
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUED_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_chunks, daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buf += data
        if len(self.buf) >= CHUNK:
            self.send()
        return len(data)

    def send(self) -> None:
        """Queue what is buffered as one chunk (raise if writing failed or was refused)."""
        self._raise()
        if self.refused:
            raise Refused
        if self.buf:
            self._queue.put(b"%d\n" % len(self.buf) + self.buf)
            self.buf = bytearray()

    def finish(self) -> None:
        """Send the rest and wait until every chunk is written (or dropped, when refused)."""
        if not self.refused:
            self.send()
        self.close_writer()
        self._raise()

    def _raise(self) -> None:
        if isinstance(self._error, TransportError):
            raise self._error
        if self._error:
            raise OSError(f"writing to the pod failed: {self._error}")

    def close_writer(self) -> None:
        """End the writing thread (after the chunks already queued)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _write_chunks(self) -> None:
        if self._first:
            try:
                self.refused = not self._first()
            except BaseException as err:  # raised again in the maker's thread
                self._error = err
        while (chunk := self._queue.get()) is not None:
            if self._error is None and not self.refused:  # else only drain (never block)
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
            self.read(CHUNK)
