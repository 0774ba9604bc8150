"""``paude blocked [SESSION]``: the destinations the session's proxy refused.

A user whose agent "cannot reach X" sees here why, newest first, with the
command that allows it; on either backend, through ``Backend.session_proxy``.
Importing this module registers ``blocked`` and ``allow`` on the app (one
import line in :mod:`paude.cli`).
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer

from paude.cli.app import BackendOpt
from paude.cli.commands import open_backend, target
from paude.cli.output import RichReporter, print_json
from paude.proxylog import BlockedDomain

SessionArg = Annotated[
    str | None, typer.Argument(help="Session name (default: this workspace's session).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _render(blocked: list[BlockedDomain]) -> str:
    width = max(len(b.domain) for b in blocked)
    rows = []
    for b in blocked:
        when = dt.datetime.fromtimestamp(b.last_seen, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        ports = ",".join(map(str, b.ports)) or "-"
        rows.append(f"{b.domain:<{width}}  {when}  ports {ports:<7} x{b.count:<4} {b.hint}")
    return "\n".join(rows) + "\n"


def blocked(ctx: typer.Context, session: SessionArg = None, json: JsonOpt = False,
            backend: BackendOpt = None) -> None:
    """List the destinations the session's proxy denied, most recent first."""
    be, g = open_backend(ctx, backend)
    name = target(g, session)
    found = be.session_proxy(name).blocked()
    if json:
        print_json([b.to_dict() for b in found])
    elif found:
        sys.stdout.write(_render(found))
    else:
        RichReporter(verbosity=g.verbosity).info(f"The proxy of {name} has denied nothing yet.")


def register(app: typer.Typer) -> None:
    """Add ``blocked`` and ``allow`` to ``app``."""
    from paude.cli import allow

    app.command(name="blocked", epilog="Example: paude blocked --json")(blocked)
    allow.register(app)


def _register_on_import() -> None:
    from paude.cli.app import app

    register(app)


_register_on_import()
