"""Applying the pod's changes locally: never outside the workspace, never through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paude.sync import local
from paude.sync.paths import Excludes
from paude.sync.state import UNREAD, Index, Kind


def _staged(root: Path, data: bytes) -> Path:
    p = local.staging_dir(root) / "s"
    p.write_bytes(data)
    return p


def test_file_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "ws", tmp_path / "bashrc"
    root.mkdir()
    outside.write_text("mine\n")
    (root / "x").symlink_to(outside)
    local.install_file(root, "x", _staged(root, b"evil"), mode=0o644, mtime=1.0)
    assert outside.read_text() == "mine\n"
    assert not (root / "x").is_symlink() and (root / "x").read_bytes() == b"evil"


def test_no_write_below_a_symlinked_directory(tmp_path: Path) -> None:
    root, outside = tmp_path / "ws", tmp_path / "home"
    root.mkdir()
    outside.mkdir()
    (root / "d").symlink_to(outside)
    with pytest.raises(local.UnsafePathError, match="not a directory"):
        local.install_file(root, "d/.bashrc", _staged(root, b"evil"), mode=0o644, mtime=1.0)
    with pytest.raises(local.UnsafePathError):
        local.install_link(root, "d/l", "/etc/passwd")
    assert list(outside.iterdir()) == []
    assert local.read_entry(root, "d/.bashrc") is None
    assert local.remove(root, "d/x") is True and outside.exists()


def test_setuid_bits_never_land(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    local.install_file(root, "run", _staged(root, b"#!/bin/sh\n"), mode=0o6755, mtime=5.0)
    st = os.lstat(root / "run")
    assert st.st_mode & 0o7777 == 0o755
    assert st.st_mtime == 5.0
    entry, _ = local.read_entry(root, "run") or (None, None)
    assert entry is not None and entry.mode == 0o755


def test_links_are_kept_as_links(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    local.install_link(root, "l", "/etc/passwd")
    assert os.readlink(root / "l") == "/etc/passwd"
    entry, _ = local.read_entry(root, "l") or (None, None)
    assert entry is not None and entry.kind is Kind.LINK


def test_scan_skips_excluded_and_never_follows_links(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "src" / "a.py").write_text("a")
    (root / "node_modules" / "x" / "b.js").write_text("b")
    (root / "up").symlink_to(tmp_path)
    found = local.scan(root, Excludes(), Index())
    assert sorted(found) == ["src", "src/a.py", "up"]
    assert found["up"][0].kind is Kind.LINK


def test_remove_keeps_a_directory_that_still_holds_files(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "d").mkdir(parents=True)
    (root / "d" / "new").write_text("n")
    assert local.remove(root, "d") is False
    assert (root / "d" / "new").exists()


def test_scan_reads_no_new_file_and_never_enters_a_symlinked_directory(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "d").mkdir(parents=True)
    (root / "d" / "new").write_text("n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s")
    (root / "link").symlink_to(tmp_path / "outside")
    found = local.scan(root, Excludes(), Index())
    assert found["d/new"][0].digest == UNREAD  # unknown to the index: not read
    assert not found["d/new"][0].same(found["d/new"][0])  # unread never agrees
    assert sorted(found) == ["d", "d/new", "link"]
    assert list(local.walk(root, Excludes(), "link")) == []  # a start through a link: nothing
