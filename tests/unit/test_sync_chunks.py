"""The push's framing over a real pipe: a thread writes the chunks, faults reach the maker."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from paude.sync import local
from paude.sync.channel import CHUNK, Refused, _Chunked
from paude.sync.paths import Excludes
from paude.sync.state import Index
from paude.sync.tarout import PushItem, TarWriter


def _pipe() -> tuple[int, object]:
    r, w = os.pipe()
    return r, os.fdopen(w, "wb", buffering=0)


def _read_all(fd: int, into: bytearray) -> threading.Thread:
    def run() -> None:
        while data := os.read(fd, 1 << 16):
            into.extend(data)
    t = threading.Thread(target=run)
    t.start()
    return t


def test_chunks_arrive_framed_and_in_order() -> None:
    r, out = _pipe()
    got = bytearray()
    reader = _read_all(r, got)
    chunks = _Chunked(out)  # type: ignore[arg-type]
    payload = os.urandom(3 * CHUNK + 5)
    for i in range(0, len(payload), 4096):
        chunks.write(payload[i:i + 4096])
    chunks.finish()
    out.close()  # type: ignore[attr-defined]
    reader.join()
    frames, rest = bytearray(), bytes(got)
    while rest:
        size, _, rest = rest.partition(b"\n")
        frames += rest[:int(size)]
        rest = rest[int(size):]
    assert bytes(frames) == payload


def test_a_dropped_stream_reaches_the_maker_and_never_blocks_it() -> None:
    r, out = _pipe()
    chunks = _Chunked(out)  # type: ignore[arg-type]
    os.close(r)  # the pod's end is gone: every write is EPIPE
    with pytest.raises(OSError, match="writing to the pod failed"):
        for _ in range(64):  # more than the queue holds: a stuck writer would hang here
            chunks.write(bytes(CHUNK))
        chunks.finish()
    chunks.close_writer()


def test_a_refused_upload_writes_nothing_and_stops_the_maker() -> None:
    r, out = _pipe()
    got = bytearray()
    reader = _read_all(r, got)
    answered = threading.Event()  # the pod's "no" comes after chunks are queued
    chunks = _Chunked(out, lambda: not answered.wait())  # type: ignore[arg-type]
    for _ in range(3):
        chunks.write(bytes(CHUNK))
    answered.set()
    with pytest.raises(Refused):
        for _ in range(64):
            chunks.write(bytes(CHUNK))
    chunks.finish()
    out.close()  # type: ignore[attr-defined]
    reader.join()
    assert chunks.refused and got == b""


def test_a_failed_answer_is_raised_in_the_maker() -> None:
    r, out = _pipe()
    chunks = _Chunked(out, lambda: (_ for _ in ()).throw(OSError("no answer")))  # type: ignore[arg-type]
    chunks.write(b"x")
    with pytest.raises(OSError, match="no answer"):
        chunks.finish()
    os.close(r)


def test_the_walked_tree_is_the_stream_of_the_planned_push(tmp_path: Path) -> None:
    """add_tree (a first sync) writes what add, path by path in walk order, writes."""
    root = tmp_path / "ws"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("deep")
    (root / "top").write_bytes(os.urandom(5000))
    (root / "lnk").symlink_to("a/b/f")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x").write_text("never sent")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("never read")
    (root / "out").symlink_to(tmp_path / "outside")  # sent as a link, never walked into
    walked, planned = bytearray(), bytearray()
    tree = TarWriter(walked.extend)
    sent = tree.add_tree(root, Excludes())
    tree.close()
    order = list(local.scan(root, Excludes(), Index()))
    assert sorted(order) == sorted(sent) == ["a", "a/b", "a/b/f", "lnk", "out", "top"]
    assert b"never read" not in walked
    one = TarWriter(planned.extend)
    by_path = {p: one.add(PushItem(p, root)) for p in sent}
    one.close()
    assert walked == planned
    assert {p: s[0] for p, s in sent.items()} == {p: s[0] for p, s in by_path.items() if s}
