"""Workspace trust, as ``direnv allow`` and ``mise trust`` do it.

A workspace's ``paude.json`` and devcontainer files decide what the sandbox
may reach and what is built on the host, and the agent (or whoever wrote a
cloned repository) can write them. paude therefore records the files the
user approved, in the user's own state directory (never the workspace), and
compares what a start reads with them:

- the same bytes: trusted;
- a change that only removes allowlist entries: applies without asking;
- anything else (first use, a wider allowlist, another image base, setup
  command, Dockerfile or feature, a named host path, another backend): the
  user sees a readable diff and must approve it (``paude trust``).

Pure functions decide; :func:`load_record` and :func:`save_record` are the
only ones that touch the store.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paude.errors import ConfigError
from paude.trust.record import record_file

PROJECT_FILE = "paude.json"
ALLOWLIST_KEY = "allowed_domains"


class UntrustedConfigError(ConfigError):
    """The workspace's configuration changed since the user approved it (or never was)."""


@dataclass(frozen=True)
class Record:
    """What the user approved for one workspace: file name -> text."""

    workspace: str
    files: Mapping[str, str]

    @property
    def digest(self) -> str:
        """Return the digest of the approved files."""
        return digest_files(self.files)


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing a workspace's files with the approved ones."""

    trusted: bool
    narrowed: bool = False
    reasons: tuple[str, ...] = ()
    diff: str = ""


def digest_files(files: Mapping[str, str]) -> str:
    """Return ``sha256:<hex>`` over every (name, text) pair, in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        for part in (name, files[name]):
            data = part.encode()
            h.update(f"{len(data)}:".encode() + data)
    return f"sha256:{h.hexdigest()}"


def name_files(workspace: Path, files: Mapping[Path, bytes]) -> dict[str, str]:
    """Return the files keyed by their path relative to ``workspace`` (absolute elsewhere)."""
    named = {}
    for path, raw in files.items():
        key = str(path.relative_to(workspace)) if path.is_relative_to(workspace) else str(path)
        named[key] = raw.decode("utf-8", errors="replace")
    return named


def _parse(text: str) -> Any:
    import json5  # devcontainer files allow comments; paude.json is plain JSON, also json5

    try:
        return json5.loads(text)
    except ValueError:
        return None


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): data}


def _domains(parsed: Any) -> set[str]:
    value = parsed.get(ALLOWLIST_KEY, []) if isinstance(parsed, dict) else []
    return {str(d) for d in value} if isinstance(value, list) else set()


def _without_allowlist(parsed: Any) -> Any:
    if isinstance(parsed, dict):
        return {k: v for k, v in parsed.items() if k != ALLOWLIST_KEY}
    return parsed


def only_narrows(old: Mapping[str, str], new: Mapping[str, str]) -> bool:
    """Return whether ``new`` differs from ``old`` only by dropping allowlist entries."""
    if set(old) != set(new) or any(old[n] != new[n] for n in old if n != PROJECT_FILE):
        return False
    if PROJECT_FILE not in new:
        return True
    before, after = _parse(old[PROJECT_FILE]), _parse(new[PROJECT_FILE])
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    return _without_allowlist(before) == _without_allowlist(after) and (
        _domains(after) <= _domains(before))


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _file_reasons(name: str, old: str | None, new: str | None) -> list[str]:
    if new is None:
        return [f"{name}: removed"]
    before, after = _parse(old) if old is not None else {}, _parse(new)
    if after is None or before is None or not name.endswith(".json"):
        return [f"{name}: {'new file' if old is None else 'changed'}"]
    reasons = []
    if name == PROJECT_FILE:
        added = sorted(_domains(after) - _domains(before))
        if added:
            reasons.append(f"{name}: allowed_domains adds {', '.join(added)}")
        before, after = _without_allowlist(before), _without_allowlist(after)
    flat_old, flat_new = _flatten(before), _flatten(after)
    for key in sorted(set(flat_old) | set(flat_new)):
        if key and flat_old.get(key) != flat_new.get(key):
            if key not in flat_new:
                reasons.append(f"{name}: {key} removed")
            else:
                reasons.append(f"{name}: {key} = {_show(flat_new[key])}")
    return reasons


def explain(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[str, ...]:
    """Return one line per change from ``old`` to ``new`` (what the user approves)."""
    reasons = [] if old else ["first use of this workspace's configuration"]
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            reasons += _file_reasons(name, old.get(name), new.get(name))
    return tuple(reasons)


def render_diff(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """Return a unified diff from the approved files to the current ones."""
    chunks: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, ""), new.get(name, "")
        if before != after:
            chunks += difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True),
                fromfile=f"approved/{name}" if name in old else "/dev/null",
                tofile=name if name in new else "/dev/null")
    return "".join(line if line.endswith("\n") else line + "\n" for line in chunks)


def evaluate(current: Mapping[str, str], record: Record | None) -> Verdict:
    """Decide whether the workspace files ``current`` may be used as they are (pure)."""
    approved = dict(record.files) if record else {}
    if not current or digest_files(current) == digest_files(approved):
        return Verdict(trusted=True)
    if record is not None and only_narrows(approved, current):
        return Verdict(trusted=True, narrowed=True)
    return Verdict(False, reasons=explain(approved, current),
                   diff=render_diff(approved, current))


def record_path(state: Path, workspace: Path) -> Path:
    """Return where the approval of ``workspace`` is kept (one file per workspace)."""
    return Path(record_file(str(state), str(workspace)))


def load_record(state: Path, workspace: Path) -> Record | None:
    """Return the approval of ``workspace``, or ``None`` (a damaged one counts as none)."""
    try:
        data = json.loads(record_path(state, workspace).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if data.get("workspace") != str(workspace) or not isinstance(files, dict):
        return None
    return Record(str(workspace), {str(k): str(v) for k, v in files.items()})


def save_record(state: Path, workspace: Path, files: Mapping[str, str]) -> Path:
    """Record ``files`` as approved for ``workspace`` (atomically, readable only by you)."""
    path = record_path(state, workspace)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = {"workspace": str(workspace), "digest": digest_files(files), "files": dict(files)}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(body, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return path
