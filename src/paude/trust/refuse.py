"""Workspaces and host paths paude refuses, before anything is created."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from paude.errors import ConfigError

# Host secrets a workspace must never contain (it is mounted read-write).
SECRET_DIRS = (".ssh", ".gnupg", ".config/gcloud", ".config/gh")


class WorkspaceRefusedError(ConfigError):
    """The workspace is, or contains, something the agent must never write."""


class HostPathRefusedError(ConfigError):
    """A path named by workspace configuration leads outside where it may."""


def _relation(ws: Path, secret: Path, *, must_exist: bool) -> str | None:
    if secret == ws or secret in ws.parents:
        return "inside"
    if ws in secret.parents and (secret.exists() or not must_exist):
        return "contains"
    return None


def check_workspace(workspace: Path, home: Path, paude_dirs: Sequence[Path] = ()) -> None:
    """Refuse ``/``, the home directory, and any workspace holding or inside host secrets.

    ``paude_dirs`` are paude's own config and state directories: a workspace
    holding them would let the agent write its own allowlist or approvals.

    Raises:
        WorkspaceRefusedError: one line, naming what the workspace holds.
    """
    ws = workspace.resolve()
    home = home.resolve()
    reason = None
    if ws == Path("/"):
        reason = "it is the root directory"
    elif ws == home:
        reason = "it is your home directory"
    checks = [(home / name, f"~/{name}", True) for name in SECRET_DIRS]
    checks += [(d.resolve(), str(d), False) for d in paude_dirs]
    for secret, shown, must_exist in checks:
        if reason:
            break
        relation = _relation(ws, secret, must_exist=must_exist)
        if relation:
            reason = f"it {'is inside' if relation == 'inside' else 'contains'} {shown}"
    if reason:
        raise WorkspaceRefusedError(
            f"refusing workspace {ws}: {reason}, and the agent could write there; "
            "run paude in a project directory")


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _opened_path(fd: int, fallback: Path) -> Path:
    """Return where the open file ``fd`` really is (Linux says it; elsewhere resolve again)."""
    proc = Path(f"/proc/self/fd/{fd}")
    return Path(os.readlink(proc)) if proc.exists() else fallback.resolve()


def resolve_confined(path: Path, roots: Sequence[Path], *, what: str) -> Path:
    """Return ``path`` with every symlink resolved, if that lies under one of ``roots``.

    Raises:
        HostPathRefusedError: ``path`` leads outside ``roots``.
        ConfigError: it does not exist.
    """
    roots = [r.resolve() for r in roots]
    try:
        resolved = path.resolve(strict=True)
    except OSError as err:
        raise ConfigError(f"{what} {str(path)!r}: {err.strerror or 'cannot resolve'}") from err
    if not _under(resolved, roots):
        places = " or ".join(str(r) for r in roots)
        raise HostPathRefusedError(
            f"{what} {str(path)!r} resolves to {resolved}, outside {places}: refused")
    return resolved


def confine_dir(path: Path, roots: Sequence[Path], *, what: str) -> Path:
    """Return the resolved directory ``path`` if it and every entry in it lie under ``roots``.

    For a directory another program reads (``podman --cert-dir`` reads each
    ``*.crt``, ``*.cert`` and ``*.key``): a symlink in it counts too.

    Raises:
        HostPathRefusedError: it or an entry leads outside ``roots``, or it is not a directory.
    """
    resolved = resolve_confined(path, roots, what=what)
    if not resolved.is_dir():
        raise HostPathRefusedError(f"{what} {str(path)!r} is not a directory: refused")
    for entry in resolved.iterdir():
        resolve_confined(entry, roots, what=f"{what} entry")
    return resolved


def read_confined(path: Path, roots: Sequence[Path], *, what: str) -> tuple[bytes, Path]:
    """Read ``path`` only if, with every symlink resolved, it lies under one of ``roots``.

    The file is opened by its resolved name without following a final
    symlink, and where the opened file really is is checked again, so a
    symlink swapped in between the check and the read is refused too.

    Raises:
        HostPathRefusedError: ``path`` leads outside ``roots``, or is not a file.
        ConfigError: it cannot be read.
    """
    roots = [r.resolve() for r in roots]
    resolved = resolve_confined(path, roots, what=what)
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise ConfigError(f"{what} {str(path)!r}: {err.strerror}") from err
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):
            raise HostPathRefusedError(f"{what} {str(path)!r} is not a regular file: refused")
        if not _under(_opened_path(handle.fileno(), resolved), roots):
            raise HostPathRefusedError(f"{what} {str(path)!r} changed while read: refused")
        return handle.read(), resolved
