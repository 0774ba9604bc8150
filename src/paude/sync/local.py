"""The local side: scan the workspace and apply the pod's changes, safely.

Every write goes through ``_safe_parent``: each directory on the way must be
a real directory inside the workspace (a symlink planted by the pod is
replaced as a link, never written through). Files land by rename from the
staging directory, so a kill never leaves half a file. No set-uid bits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from paude.errors import ConfigError, PaudeError
from paude.sync.paths import CONFLICTS_DIR, STAGING_DIR, Excludes, check_path
from paude.sync.state import UNREAD, Entry, Index, Kind, LocalStat

PERMISSION_BITS = 0o777  # set-uid, set-gid and sticky bits never travel
_CHUNK = 1 << 20


class UnsafePathError(PaudeError):
    """A sync write would leave the workspace or go through a symlink."""


def digest_bytes(data: bytes) -> str:
    """Return the digest the sync compares contents by."""
    return hashlib.sha256(data).hexdigest()


def local_stat(st: os.stat_result) -> LocalStat:
    """Return the stat fields that tell a local file changed."""
    return (st.st_mtime_ns, st.st_size, st.st_mode, st.st_ino)


def _hash_file(path: Path | str, dir_fd: int | None = None) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_entry(root: Path, path: str, index: Index | None = None) -> tuple[Entry, LocalStat] | None:
    """Return the local entry of ``path`` (None when absent or not syncable).

    A file whose stat matches the index's is not read again.
    """
    full = root / path
    try:
        _check_parents(root, path)
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            return Entry(Kind.LINK, 0, digest_bytes(os.readlink(full).encode())), local_stat(st)
        if stat.S_ISDIR(st.st_mode):
            return Entry(Kind.DIR, st.st_mode & PERMISSION_BITS), local_stat(st)
        if not stat.S_ISREG(st.st_mode):
            return None
        rec = index.records.get(path) if index else None
        if rec and rec.local == local_stat(st):
            return rec.entry, rec.local
        return Entry(Kind.FILE, st.st_mode & PERMISSION_BITS, _hash_file(full)), local_stat(st)
    except (FileNotFoundError, NotADirectoryError, UnsafePathError):
        return None


def walk(root: Path, excludes: Excludes, start: str = "") -> Iterator[str]:
    """Yield every syncable path under ``start`` (never following a symlink)."""
    for path, _item, _fd in entries(root, excludes, start):
        yield path


def scan(root: Path, excludes: Excludes, index: Index) -> dict[str, tuple[Entry, LocalStat]]:
    """Return the entry of every syncable local path.

    A file the index does not know is not read: its digest is ``UNREAD``
    (whatever it holds, it differs from an absent base); the engine reads
    those the pod also holds. A known file whose stat matches is not read
    either. One ``lstat`` per path, from the directory walk itself.
    """
    found = {}
    for path, item, fd in entries(root, excludes):
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:  # gone meanwhile: not synced
            continue
        mode, name = st.st_mode, item.name
        if stat.S_ISLNK(mode):
            with contextlib.suppress(OSError):  # gone meanwhile: not synced
                link = os.readlink(name, dir_fd=fd)
                found[path] = Entry(Kind.LINK, 0, digest_bytes(link.encode())), local_stat(st)
        elif stat.S_ISDIR(mode):
            found[path] = Entry(Kind.DIR, mode & PERMISSION_BITS), local_stat(st)
        elif stat.S_ISREG(mode):
            seen = local_stat(st)
            rec = index.records.get(path)
            if rec is None:
                found[path] = Entry(Kind.FILE, mode & PERMISSION_BITS, UNREAD), seen
            elif rec.local == seen:
                found[path] = rec.entry, rec.local
            else:
                with contextlib.suppress(OSError):  # gone or unreadable: not synced
                    found[path] = (Entry(Kind.FILE, mode & PERMISSION_BITS,
                                         _hash_file(name, fd)), seen)
    return found


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _open_dir(root: Path, rel: str) -> int:
    """Open ``root/rel`` one component at a time, refusing a symlink anywhere below root."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for part in check_path(rel).split("/") if rel else ():
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def entries(root: Path, excludes: Excludes, start: str = "",
            ) -> Iterator[tuple[str, os.DirEntry[str], int]]:
    """Yield (path, directory entry, parent directory's fd) of every syncable path under ``start``.

    Depth first, parents before children. Each directory is opened relative
    to its parent's fd with ``O_NOFOLLOW``, so a directory swapped for a
    symlink during the walk is never entered; the fd is valid while its
    entries are yielded. Open fds: one per level. An entry's kind is the
    directory's (no ``lstat`` unless the file system does not say it); its
    ``stat(follow_symlinks=False)`` is one ``lstat``, made once.
    """
    try:
        fd: int | None = _open_dir(root, start)
    except (OSError, ConfigError):
        return
    stack: list[tuple[int, Iterator[tuple[str, str]]]] = []
    rel = start
    try:
        while fd is not None:
            subdirs: list[tuple[str, str]] = []
            stack.append((fd, iter(subdirs)))
            for path, item, is_dir in _list_dir(fd, rel, excludes):
                yield path, item, fd
                if is_dir:
                    subdirs.append((path, item.name))
            fd, rel = _next_dir(stack)
    finally:
        for parent, _rest in stack:
            os.close(parent)


def _list_dir(fd: int, rel: str, excludes: Excludes,
              ) -> Iterator[tuple[str, os.DirEntry[str], bool]]:
    """Yield (path, entry, is a directory) of the directory ``fd``'s entries not excluded."""
    try:
        with os.scandir(fd) as it:
            items = list(it)
    except OSError:
        return
    prefix = f"{rel}/" if rel else ""
    for item in items:
        path = prefix + item.name
        try:
            is_dir = item.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if not excludes.is_excluded(path, is_dir=is_dir):
            yield path, item, is_dir


def _next_dir(stack: list[tuple[int, Iterator[tuple[str, str]]]]) -> tuple[int | None, str]:
    """Open the next directory to list (closing the finished ones); (None, "") when done."""
    while stack:
        parent, rest = stack[-1]
        nxt = next(rest, None)
        if nxt is None:
            os.close(stack.pop()[0])
            continue
        rel, name = nxt
        with contextlib.suppress(OSError):  # gone, or swapped for a symlink: skipped
            return os.open(name, _DIR_FLAGS, dir_fd=parent), rel
    return None, ""


def _check_parents(root: Path, path: str) -> None:
    """Raise UnsafePathError if a parent of ``path`` is a symlink or not a directory."""
    check_path(path)
    current = root
    for part in path.split("/")[:-1]:
        current = current / part
        st = os.lstat(current)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"refused to sync {path!r}: {part!r} is not a directory")


def _safe_parent(root: Path, path: str) -> Path:
    """Create the parents of ``path`` as real directories; refuse symlinks on the way."""
    check_path(path)
    current = root
    for part in path.split("/")[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"refused to sync {path!r}: {part!r} is not a directory")
    return current


def staging_dir(root: Path) -> Path:
    """Return the workspace's staging directory (same file system: renames are atomic)."""
    target = _safe_parent(root, f"{STAGING_DIR}/x")
    os.chmod(target, 0o700)
    return target


def install_file(root: Path, path: str, staged: Path, *, mode: int, mtime: float) -> LocalStat:
    """Move the staged file onto ``path`` (replacing a file or a link, never through one)."""
    parent = _safe_parent(root, path)
    target = parent / path.rsplit("/", 1)[-1]
    if target.is_dir() and not target.is_symlink():
        _remove_empty_dir(target, path)
    os.chmod(staged, mode & PERMISSION_BITS)
    os.utime(staged, (mtime, mtime))
    os.replace(staged, target)
    return local_stat(os.lstat(target))


def install_link(root: Path, path: str, link: str) -> LocalStat:
    """Create ``path`` as a symlink to ``link`` (the link itself: nothing is followed)."""
    parent = _safe_parent(root, path)
    target = parent / path.rsplit("/", 1)[-1]
    if target.is_dir() and not target.is_symlink():
        _remove_empty_dir(target, path)
    tmp = staging_dir(root) / f"link-{os.getpid()}-{abs(hash(path))}"
    tmp.unlink(missing_ok=True)
    os.symlink(link, tmp)
    os.replace(tmp, target)
    return local_stat(os.lstat(target))


def install_dir(root: Path, path: str, mode: int) -> LocalStat:
    """Make ``path`` a directory (a file or link in its way is replaced)."""
    parent = _safe_parent(root, path)
    target = parent / path.rsplit("/", 1)[-1]
    if target.is_symlink() or target.exists() and not target.is_dir():
        target.unlink()
    if not target.exists():
        os.mkdir(target, mode & PERMISSION_BITS or 0o755)
    return local_stat(os.lstat(target))


def _remove_empty_dir(target: Path, path: str) -> None:
    try:
        target.rmdir()
    except OSError as err:
        raise UnsafePathError(f"cannot replace the directory {path!r}: it is not empty") from err


def remove(root: Path, path: str) -> bool:
    """Delete ``path`` (a directory only when empty); return whether it is gone."""
    try:
        _check_parents(root, path)
        full = root / path
        if full.is_dir() and not full.is_symlink():
            full.rmdir()
        else:
            full.unlink()
    except (FileNotFoundError, NotADirectoryError, UnsafePathError):
        return True  # not in the workspace's own tree: nothing of it to delete
    except OSError:
        return False  # a directory still holding files: it stays
    return True


def keep_conflict_copy(root: Path, path: str, staged: Path, stamp: str) -> str:
    """Move the pod's version of ``path`` under .paude/conflicts; return where it went."""
    dest = f"{CONFLICTS_DIR}/{path}.{stamp}"
    parent = _safe_parent(root, dest)
    os.chmod(staged, 0o600)
    os.replace(staged, parent / dest.rsplit("/", 1)[-1])
    return dest


def log_conflict(root: Path, line: str) -> None:
    """Append one line to .paude/conflicts/conflicts.log."""
    parent = _safe_parent(root, f"{CONFLICTS_DIR}/conflicts.log")
    fd = os.open(parent / "conflicts.log",
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(line + "\n")
