"""The pod's side, over the exec stream: scan, pull (tar out), push (tar in), delete.

Nothing read from the pod is trusted: a tar member is taken only if it is a
clean relative path that was asked for, and only files, directories and
symlinks are kept (hard links are dereferenced by the pod's tar; devices
and fifos are dropped).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from paude.sync.channel import Channel, TransportError
from paude.sync.local import PERMISSION_BITS, digest_bytes
from paude.sync.paths import Excludes, is_clean_path
from paude.sync.state import Entry, Kind, RemoteStat
from paude.sync.tarout import PushItem, Sent, TarWriter
from paude.sync.transport import ExecTransport, parse_scan

__all__ = ["Remote", "RemoteItem", "TransportError"]

_CHUNK = 1 << 20
_KINDS = {"f": Kind.FILE, "d": Kind.DIR, "l": Kind.LINK}


@dataclass(frozen=True)
class RemoteItem:
    """A pod path as a scan or a pull saw it (``staged``: its bytes, for a pulled file)."""

    entry: Entry
    stat: RemoteStat | None
    link: str = ""
    staged: Path | None = None


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

    def push_new(self, root: Path, excludes: Excludes,
                 progress: Callable[[int], None] | None = None,
                 built: Callable[[dict[str, Sent]], None] | None = None,
                 ) -> dict[str, Sent] | None:
        """Send the whole local tree, as it is walked, into the pod's workspace if it is empty.

        Return what was sent, per path; None when the pod's workspace holds
        anything (nothing of the tree was sent then). The walk starts while
        the exec does: an initial sync costs the pod's extract, not a scan,
        a plan and then a push. ``built`` gets what was sent once the whole
        tree is in the stream, while the pod may still be extracting it.
        """
        sent: dict[str, Sent] = {}
        with self.channel.upload("pushnew", ask=True) as stream:
            tar = TarWriter(stream.write)
            sent = tar.add_tree(root, excludes, progress)
            tar.close()
            stream.send()  # the end of the tar is queued: the pod has all it needs
            if built:
                built(sent)
        return None if stream.refused else sent

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
