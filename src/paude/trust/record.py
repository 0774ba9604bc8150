"""Where the approval of a workspace is kept, read with the standard library only.

The quick reattach (``cli/quick_openshift.py``) reads it without loading
:mod:`paude.trust.approval` (pathlib, dataclasses and difflib cost more than
its whole attach); :func:`paude.trust.approval.record_path` names the same file.
"""

from __future__ import annotations

import hashlib
import json
import os


def record_file(state: str, workspace: str) -> str:
    """Return the file that holds the approval of ``workspace`` under ``state``."""
    key = hashlib.sha256(workspace.encode()).hexdigest()[:32]
    return os.path.join(state, "trust", f"{key}.json")


def approved_text(state: str, workspace: str, name: str) -> str | None:
    """Return the approved text of ``name`` in ``workspace``, or ``None`` (none approved)."""
    try:
        with open(record_file(state, workspace), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None  # not a record paude wrote: nothing is approved
    files = data.get("files")
    if data.get("workspace") != workspace or not isinstance(files, dict):
        return None
    text = files.get(name)
    return text if isinstance(text, str) else None
