"""``paude sync --status``: stable JSON keys, read from local state only."""

from __future__ import annotations

from pathlib import Path

import pytest

from paude.cli.sync import _render
from paude.sync import ExecTransport, SyncSpec
from paude.sync.api import status_of
from paude.sync.daemon import SyncFiles
from paude.sync.state import Entry, Index, Kind, Record, save_index, write_atomic


def test_status_reports_pending_local_changes(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "synced").write_text("a")
    (ws / "new").write_text("b")
    assert status_of("demo") is None
    files = SyncFiles.of("demo")
    import json

    spec = SyncSpec("demo", ws, ExecTransport(("kubectl", "exec", "-i", "p", "--")))
    write_atomic(files.spec, json.dumps(spec.to_json()))
    from paude.sync.local import read_entry

    got = read_entry(ws, "synced")
    assert got
    save_index(Index({"synced": Record(got[0], got[1]),
                      "gone": Record(Entry(Kind.FILE, 0o644, "x"))}), files.index)
    data = status_of("demo")
    assert data is not None
    assert sorted(data) == ["conflicts", "last_error", "last_pull", "last_push", "last_round",
                            "paths", "pending_local", "pid", "session", "state"]
    assert data["state"] == "stopped"
    assert data["pending_local"] == ["new", "gone"]
    assert data["paths"] == 2
    text = _render(data)
    assert "pending local changes:  2 (new, gone)" in text
    assert "last sent to the pod:   never" in text
