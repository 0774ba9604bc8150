"""The push tar: what tarfile writes for the same members, byte for byte; nothing unsafe read."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from paude.sync import tarout
from paude.sync.state import Kind
from paude.sync.tarout import PushItem, TarWriter, build_header


def _tree(root: Path, outside: Path) -> list[str]:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "deep" / "a.py").write_text("a\n" * 300)
    (root / "empty").write_bytes(b"")
    (root / "block").write_bytes(b"x" * 512)
    (root / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "run.sh", 0o750)
    (root / "suid").write_text("s")
    os.chmod(root / "suid", 0o4755)
    (root / "n\u00e9e \udcff").write_text("odd name")  # not UTF-8 on disk
    long_dir = root / ("d" * 90)
    long_dir.mkdir()
    (long_dir / ("f" * 30)).write_text("long name")
    (root / "link").symlink_to(outside)
    (root / "longlink").symlink_to("t" * 150)
    os.utime(root / "run.sh", (1_000_000_000.7, 1_000_000_000.7))
    return ["src", "src/deep", "src/deep/a.py", "empty", "block", "run.sh", "suid",
            "n\u00e9e \udcff", "d" * 90, f"{'d' * 90}/{'f' * 30}", "link", "longlink"]


def _tarfile_stream(root: Path, paths: list[str]) -> bytes:
    """What the push wrote with tarfile before (GNU format, stream mode)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for path in paths:
            st = os.lstat(root / path)
            info = tarfile.TarInfo(path)
            info.mtime, info.mode = int(st.st_mtime), st.st_mode & 0o777
            if (root / path).is_symlink():
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(root / path)
                tar.addfile(info)
            elif (root / path).is_dir():
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = st.st_size
                with open(root / path, "rb") as f:
                    tar.addfile(info, f)
    return out.getvalue()


def test_the_stream_is_what_tarfile_writes_and_each_file_is_hashed_as_sent(tmp_path: Path,
                                                                          ) -> None:
    root, outside = tmp_path / "ws", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    paths = _tree(root, outside)
    out = io.BytesIO()
    tar = TarWriter(out.write)
    sent = {p: tar.add(PushItem(p, root)) for p in paths}
    tar.close()
    assert out.getvalue() == _tarfile_stream(root, paths)
    assert len(out.getvalue()) % tarfile.RECORDSIZE == 0

    entry, rstat, st = sent["src/deep/a.py"]  # type: ignore[misc]
    assert entry.kind is Kind.FILE and entry.mode == 0o644
    assert entry.digest == hashlib.sha256(b"a\n" * 300).hexdigest()
    assert rstat is not None and rstat.size == 600 and st is not None
    assert sent["suid"][0].mode == 0o755  # type: ignore[index]  # no set-uid bit
    assert sent["run.sh"][1].mtime == 1_000_000_000.0  # type: ignore[index, union-attr]
    assert sent["link"][0].kind is Kind.LINK  # type: ignore[index]  # the link, not its target
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as back:
        assert back.getmember("link").linkname == str(outside)
        assert back.getmember("suid").mode == 0o755


@pytest.mark.parametrize(("kind", "fields"), [
    (Kind.FILE, {"mode": 0o644, "size": 8**11 - 1, "mtime": 1_700_000_000}),
    (Kind.FILE, {"mode": 0o600, "size": 8**11, "mtime": 1}),  # base-256: tarfile's header
    (Kind.FILE, {"mode": 0o600, "size": 1, "mtime": -5}),
    (Kind.DIR, {"mode": 0o755}),
    (Kind.DIR, {"mode": 0o700, "name": "x" * 100}),  # the slash makes it 101: a long name
    (Kind.LINK, {"mode": 0o777, "linkname": "../" * 33 + "x"}),
])
def test_each_header_is_tarfiles(kind: Kind, fields: dict[str, int | str]) -> None:
    name = str(fields.pop("name", "some/path"))
    info = tarfile.TarInfo(name)
    info.type = {Kind.FILE: tarfile.REGTYPE, Kind.DIR: tarfile.DIRTYPE,
                 Kind.LINK: tarfile.SYMTYPE}[kind]
    for key, value in fields.items():
        setattr(info, key, value)
    want = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    assert build_header(name, kind, **fields) == want  # type: ignore[arg-type]


def test_a_file_that_changes_while_sent_keeps_the_frame_and_is_flagged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header is made from the file's stat, before its bytes are read: change it then."""
    root = tmp_path
    for name in ("shrinks", "grows", "empty-grows", "same"):
        (root / name).write_bytes(b"" if name == "empty-grows" else b"abcdef")
    change = {"shrinks": lambda f: f.truncate(2), "grows": lambda f: f.write(b"more"),
              "empty-grows": lambda f: f.write(b"x"), "same": lambda f: None}
    chunks: list[bytes] = []

    def header_then_change(name: str, *args: Any, **kwargs: Any) -> bytes:
        header = build_header(name, *args, **kwargs)
        with open(root / name, "r+b") as f:
            f.seek(0, os.SEEK_END)
            change[name](f)
        return header

    monkeypatch.setattr(tarout, "build_header", header_then_change)
    tar = TarWriter(chunks.append)
    sent = {name: tar.add(PushItem(name, root)) for name in change}
    tar.close()
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as back:
        got = {m.name: back.extractfile(m).read() for m in back}  # type: ignore[union-attr]
    assert got == {"shrinks": b"ab\0\0\0\0", "grows": b"abcdef", "empty-grows": b"",
                   "same": b"abcdef"}
    for name in ("shrinks", "grows", "empty-grows"):  # no local stat: sent again next round
        assert sent[name] is not None and sent[name][2] is None, name
    assert sent["same"] is not None and sent["same"][2] is not None
    assert sent["shrinks"][0].digest == hashlib.sha256(b"ab\0\0\0\0").hexdigest()


def test_nothing_is_read_through_a_symlinked_parent_or_from_a_special_file(tmp_path: Path,
                                                                           ) -> None:
    root, outside = tmp_path / "ws", tmp_path / "home"
    root.mkdir()
    outside.mkdir()
    (outside / ".bashrc").write_text("secret")
    (root / "d").symlink_to(outside)
    os.mkfifo(root / "fifo")
    out = io.BytesIO()
    tar = TarWriter(out.write)
    assert tar.add(PushItem("d/.bashrc", root)) is None
    assert tar.add(PushItem("fifo", root)) is None
    assert tar.add(PushItem("gone", root)) is None
    tar.close()
    assert b"secret" not in out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as back:
        assert back.getmembers() == []
