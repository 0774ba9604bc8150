"""``paude sync``: sync the session's workspace now, force it, or show the sync's status."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from paude.backends.base import Backend, SessionStatus
from paude.cli.app import BackendOpt
from paude.cli.output import RichReporter, print_json
from paude.errors import PaudeError, SyncOffError

StatusOpt = Annotated[bool, typer.Option("--status", help="Show the sync's state; change nothing.")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Make the pod's workspace a copy of the local one (pod-only changes lost).")]
SessionArg = Annotated[
    str | None, typer.Argument(help="Session name (default: this workspace's session).")]


def sync(
    ctx: typer.Context,
    session: SessionArg = None,
    *,
    backend: BackendOpt = None,
    status: StatusOpt = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    force: ForceOpt = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Sync the session's workspace both ways now and wait until both sides agree."""
    from paude.cli.commands import confirm, open_backend, target

    be, g = open_backend(ctx, backend)
    name = target(g, session)
    if status:
        _show_status(name, as_json=json)
        return
    reporter = RichReporter(verbosity=g.verbosity)
    if force and not confirm(f"Overwrite the pod's workspace of session {name} with the local"
                             " one, losing changes made only in the pod?", yes=yes):
        raise typer.Exit(1)
    with reporter.status(f"Syncing session {name}"):
        be.sync_workspace(name, "force" if force else "both")


def _show_status(name: str, *, as_json: bool) -> None:
    from paude.sync.api import status_of

    data = status_of(name)
    if data is None:
        raise PaudeError(f"session {name} has no workspace sync here",
                         hint="A podman session's workspace is bind-mounted: always in sync.")
    if as_json:
        print_json(data)
        return
    print(_render(data))


def _render(data: dict[str, Any]) -> str:
    pending = data["pending_local"]
    lines = [
        f"Sync of session {data['session']}: {data['state']}"
        + (f" (pid {data['pid']})" if data["pid"] else ""),
        f"  last sent to the pod:   {data['last_push'] or 'never'}",
        f"  last received locally:  {data['last_pull'] or 'never'}",
        f"  pending local changes:  {len(pending)}" + (f" ({', '.join(pending[:5])})"
                                                      if pending else ""),
        f"  conflicts:              {len(data['conflicts'])} (see .paude/conflicts/)",
    ]
    if data["last_error"]:
        lines.append(f"  last error:             {data['last_error']}")
    return "\n".join(lines)


def final_sync(be: Backend, name: str, reporter: RichReporter) -> bool:
    """Sync a running session before it stops; say whether it worked (or was not needed)."""
    session = be.find_session(name)
    if session is None or session.status not in (SessionStatus.RUNNING, SessionStatus.DEGRADED):
        return True
    try:
        with reporter.status(f"Syncing session {name} before it stops"):
            be.sync_workspace(name)
    except SyncOffError:
        return True
    except PaudeError as err:
        reporter.warn(f"the final sync of session {name} failed: {err.message}")
        return False
    return True


def register(app: typer.Typer) -> None:
    """Add ``sync`` to ``app``."""
    app.command(name="sync", epilog="Examples: paude sync · paude sync --status --json")(sync)
