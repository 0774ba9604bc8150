"""The push tar: local files written as a GNU tar stream, each read and hashed once.

``tarfile`` costs about 0.3 ms of Python per member (a ``TarInfo``, a copy
of it, a header through many small helpers, a buffered reader), which was
most of an initial sync's own time. Here a member is one header built from
a template, the file's bytes from one ``os.read`` (small files) and the
padding. The stream is what ``tarfile.open(mode="w|", format=GNU_FORMAT)``
writes for the same members (tests/unit/test_sync_tarout.py compares them
byte for byte); a name or link target too long for the header, or a number
too large for its field, takes tarfile's own header (GNU long-name blocks).

Nothing is read through a symlink: each parent of a path must be a real
directory (checked once per push), the file is opened ``O_NOFOLLOW``, and
only a regular file's bytes are read. Set-uid, set-gid and sticky bits
never travel.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paude.sync import local
from paude.sync.local import PERMISSION_BITS, digest_bytes
from paude.sync.paths import Excludes
from paude.sync.state import Entry, Kind, RemoteStat

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 20 blocks: tarfile pads the stream's end to it
_CHUNK = 1 << 20
_TYPES = {Kind.FILE: tarfile.REGTYPE, Kind.DIR: tarfile.DIRTYPE, Kind.LINK: tarfile.SYMTYPE}
# Header fields that never change between members: uid, gid (0: the pod's tar
# runs --no-same-owner), GNU magic, empty uname/gname/devmajor/devminor/prefix.
_IDS = b"0000000\0" * 2
_MAGIC = tarfile.GNU_MAGIC
_TAIL = bytes(32 + 32 + 8 + 8 + 155 + 12)
_MAX_NUM = (8**7, 8**11)  # what fits in an 8- and a 12-byte octal field
_FIXED_SUM = sum(_IDS) + sum(b"        ") + sum(_MAGIC)  # _TAIL and padding are zeros

Sent = tuple[Entry, RemoteStat | None, os.stat_result | None]
# A file is opened without following a symlink, and without blocking on a fifo.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


@dataclass(frozen=True)
class PushItem:
    """A local path to send: its workspace-relative path and the workspace."""

    path: str
    root: Path

    @property
    def full(self) -> str:
        """The path on this machine."""
        return f"{self.root}/{self.path}"


def build_header(name: str, kind: Kind, *, mode: int, size: int = 0, mtime: int = 0,
                 linkname: str = "") -> bytes:
    """Return the GNU tar header block(s) of one member, as tarfile writes them."""
    if kind is Kind.DIR and not name.endswith("/"):
        name += "/"
    bname = name.encode("utf-8", "surrogateescape")
    blink = linkname.encode("utf-8", "surrogateescape")
    if len(bname) > 100 or len(blink) > 100 or not (
            0 <= size < _MAX_NUM[1] and 0 <= mtime < _MAX_NUM[1]):
        return _tarfile_header(name, kind, mode=mode, size=size, mtime=mtime, linkname=linkname)
    fmode, fsize, fmtime, ftype = (b"%07o\0" % (mode & 0o7777), b"%011o\0" % size,
                                   b"%011o\0" % mtime, _TYPES[kind])
    # The checksum is the sum of the header's bytes with its own field as
    # spaces: the constant fields' share is summed once (_FIXED_SUM).
    chksum = (sum(bname) + sum(blink) + sum(fmode) + sum(fsize) + sum(fmtime) + ftype[0]
              + _FIXED_SUM)
    return b"".join((
        bname.ljust(100, b"\0"), fmode, _IDS, fsize, fmtime, b"%06o\0 " % chksum, ftype,
        blink.ljust(100, b"\0"), _MAGIC, _TAIL,
    ))


def _tarfile_header(name: str, kind: Kind, *, mode: int, size: int, mtime: int,
                    linkname: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = _TYPES[kind], mode, size, mtime
    info.linkname = linkname
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


_PADS = [bytes(-n % BLOCK) for n in range(BLOCK)]  # the zeros after n bytes of a block


def _pad(size: int) -> bytes:
    return _PADS[size % BLOCK]


class TarWriter:
    """Write members to ``write`` as one tar stream; ``close`` ends it."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self.write = write
        self.offset = 0
        self.safe_dirs: set[str] = set()

    def _out(self, data: bytes) -> None:
        self.write(data)
        self.offset += len(data)

    def add(self, item: PushItem) -> Sent | None:
        """Add one local path; return what was sent, or None if it vanished or is unsafe.

        A file that changed size while it was read is sent as its stat said
        (cut, or padded with zeros) and returned without a local stat, so the
        next round reads it again and sends it whole.
        """
        if not _parents_safe(item.root, item.path, self.safe_dirs):
            return None
        try:
            st = os.lstat(item.full)
        except OSError:
            return None
        return self._add_found(item.path, st, None, item.full)

    def add_tree(self, root: Path, excludes: Excludes,
                 progress: Callable[[int], None] | None = None) -> dict[str, Sent]:
        """Add every syncable path of ``root`` as the walk finds it; return what was sent.

        Parents come before their children, and each is read relative to its
        directory's fd, opened without following a symlink (``local.entries``):
        nothing is read through one. ``progress`` gets the count sent so far.
        """
        sent = {}
        for path, item, dir_fd in local.entries(root, excludes):
            got = self._add_entry(path, item, dir_fd)
            if got:
                sent[path] = got
                if progress:
                    progress(len(sent))
        return sent

    def _add_entry(self, path: str, item: os.DirEntry[str], dir_fd: int) -> Sent | None:
        """Add ``path``, ``item`` of the directory ``dir_fd``.

        A regular file (as the directory says) is opened without an
        ``lstat``: the ``fstat`` of what was opened is its stat.
        """
        try:
            if not item.is_file(follow_symlinks=False):
                return self._add_found(path, item.stat(follow_symlinks=False), dir_fd, item.name)
            fd = os.open(item.name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError:
            return None
        try:
            return self._add_file(path, fd)
        finally:
            os.close(fd)

    def _add_found(self, path: str, st: os.stat_result, dir_fd: int | None,
                   name: str) -> Sent | None:
        """Add ``path``, whose lstat is ``st``: ``name`` in ``dir_fd`` (None: a full path)."""
        mode, mtime = st.st_mode & PERMISSION_BITS, int(st.st_mtime)
        try:
            if stat.S_ISLNK(st.st_mode):
                link = os.readlink(name, dir_fd=dir_fd)
                self._out(build_header(path, Kind.LINK, mode=mode, mtime=mtime, linkname=link))
                return Entry(Kind.LINK, 0, digest_bytes(link.encode())), None, st
            if stat.S_ISDIR(st.st_mode):
                self._out(build_header(path, Kind.DIR, mode=mode, mtime=mtime))
                return Entry(Kind.DIR, mode), None, st
            if not stat.S_ISREG(st.st_mode):
                return None
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError:
            return None
        try:
            return self._add_file(path, fd)
        finally:
            os.close(fd)

    def _add_file(self, path: str, fd: int) -> Sent | None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        size, mode, mtime = st.st_size, st.st_mode & PERMISSION_BITS, int(st.st_mtime)
        # GNU headers hold whole seconds, as the pod then reports the file.
        header = build_header(path, Kind.FILE, mode=mode, size=size, mtime=mtime)
        if size < _CHUNK:  # most files: one read, one write of the header, bytes and padding
            # One byte more is asked for: getting it means the file grew.
            data = os.read(fd, size + 1)
            changed = len(data) != size
            if changed:
                data = data[:size].ljust(size, b"\0")  # grew: cut; shrank: zeros stand in
            self._out(header + data + _PADS[size % BLOCK])
            entry = Entry(Kind.FILE, mode, hashlib.sha256(data).hexdigest())
            return entry, RemoteStat(size, float(mtime)), None if changed else st
        self._out(header)
        h = hashlib.sha256()
        left, changed = size, False
        while left > 0:
            # The last read asks for one byte more: getting it means the file grew.
            data = os.read(fd, left + 1 if left <= _CHUNK else _CHUNK)
            if len(data) > left:
                data, changed = data[:left], True
            elif not data:  # it shrank: zeros stand in for the rest
                data, changed = bytes(left), True
            h.update(data)
            self._out(data)
            left -= len(data)
        self._out(_pad(size))
        entry = Entry(Kind.FILE, mode, h.hexdigest())
        return entry, RemoteStat(size, float(mtime)), None if changed else st

    def close(self) -> None:
        """End the archive: two zero blocks, then zeros to a whole record (as tarfile does)."""
        end = 2 * BLOCK
        self._out(bytes(end + (-(self.offset + end) % RECORD)))


def _parents_safe(root: Path, path: str, safe_dirs: set[str]) -> bool:
    """Say whether every parent of ``path`` is a real directory (each checked once per push)."""
    parts = path.split("/")[:-1]
    for i in range(len(parts)):
        rel = "/".join(parts[:i + 1])
        if rel in safe_dirs:
            continue
        try:
            if not stat.S_ISDIR(os.lstat(f"{root}/{rel}").st_mode):
                return False
        except OSError:
            return False
        safe_dirs.add(rel)
    return True
