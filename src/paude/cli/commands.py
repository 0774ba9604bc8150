"""The session commands: attach, sessions, stop, exec."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from paude.backends.base import Backend, KeepsWorkspace
from paude.cli import context as cx
from paude.cli.app import BackendOpt, app, globals_of
from paude.cli.output import RichReporter, print_json
from paude.cli.sync import final_sync
from paude.errors import ConfigError
from paude.session_lock import session_lock

SessionArg = Annotated[
    str | None, typer.Argument(help="Session name (default: this workspace's session).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def open_backend(ctx: typer.Context, backend: str | None) -> tuple[Backend, cx.Globals]:
    """Return the backend selected by flags and config, for the current workspace."""
    g = globals_of(ctx)
    workspace = cx.resolve_workspace(g.workspace)
    loaded = cx.load(g, workspace, cx.config_overrides(g, backend=backend))
    return cx.make_backend(loaded, g), g


def target(g: cx.Globals, session: str | None) -> str:
    """Return the named session, or the current workspace's."""
    return cx.session_name(session, cx.resolve_workspace(g.workspace))


@app.command(epilog="Examples: paude attach · paude attach my-session")
def attach(ctx: typer.Context, session: SessionArg = None, backend: BackendOpt = None) -> None:
    """Attach to a running session (detach again with Ctrl+b d)."""
    be, g = open_backend(ctx, backend)
    raise typer.Exit(be.attach_session(target(g, session)))


@app.command(epilog="Examples: paude sessions · paude sessions --json")
def sessions(ctx: typer.Context, json: JsonOpt = False, backend: BackendOpt = None) -> None:
    """List sessions, newest first."""
    be, _ = open_backend(ctx, backend)
    found = be.list_sessions()
    if json:
        print_json([s.to_dict() for s in found])
        return
    if not found:
        RichReporter().info("No sessions. Start one with: paude")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "STATUS", "NETWORK", "CREATED", "WORKSPACE"):
        table.add_column(column)
    for s in found:
        status = f"{s.status.value} ({s.detail})" if s.detail else s.status.value
        table.add_row(s.name, status, s.network, s.created_at, s.workspace)
    Console().print(table)


def confirm(question: str, *, yes: bool) -> bool:
    """Ask ``question`` [y/N]; refuse to hang when there is no terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} needs confirmation and there is no terminal",
                          hint="Pass --yes to confirm.")
    return typer.confirm(question, default=False, err=True)


@app.command(epilog="Examples: paude stop · paude stop my-session --force --yes")
def stop(
    ctx: typer.Context,
    session: SessionArg = None,
    backend: BackendOpt = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Also delete a kept remote workspace (unsynced work is lost).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Stop a session and remove what it created (a local workspace always stays)."""
    be, g = open_backend(ctx, backend)
    name = target(g, session)
    reporter = RichReporter(verbosity=g.verbosity)
    if force and isinstance(be, KeepsWorkspace) and not confirm(
            f"Delete the workspace volume of session {name}, with any unsynced work?", yes=yes):
        raise typer.Exit(1)
    delete = force and isinstance(be, KeepsWorkspace)
    # Waits for a start of the same session to finish, then removes what it made.
    with session_lock(name, on_wait=reporter.info) as lock:
        if isinstance(be, KeepsWorkspace) and not final_sync(be, name, reporter) and delete:
            delete = confirm("The final sync failed: delete the workspace volume anyway,"
                             " losing the pod's unsynced work?", yes=yes)
        with reporter.status(f"Stopping session {name}"):
            be.stop_session(name)
            removed = be.remove_workspace(name) if delete and isinstance(be, KeepsWorkspace) else []
        lock.discard()
    for item in removed:
        reporter.info(f"Deleted workspace volume {item}")
    reporter.info(f"Stopped session {name}")


@app.command(name="exec", epilog="Example: paude exec -- git status")
def exec_(ctx: typer.Context, session: SessionArg = None, backend: BackendOpt = None) -> None:
    """Run a command in the session's agent container: paude exec [SESSION] -- CMD..."""
    be, g = open_backend(ctx, backend)
    if not g.extra_args:
        raise ConfigError("no command given", hint="Usage: paude exec [SESSION] -- CMD [ARGS...]")
    raise typer.Exit(be.exec_in_session(target(g, session), g.extra_args))


def _register_more() -> None:
    from paude.cli import doctor, manifests, setup, trust
    from paude.cli import sync as sync_cli

    setup.register(app)
    sync_cli.register(app)
    manifests.register(app)
    trust.register(app)
    doctor.register(app)


_register_more()
