"""``paude allow DOMAIN... [--session S]``: allow more destinations in a running session.

The proxy re-reads its config; the agent keeps running and its open
connections stay up. The change lasts as long as the proxy: add the domain to
``allowed_domains`` in paude.json (or pass ``--allow-domain``) to keep it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from paude.backends.podman.proxy import apply_allow, run_find_proxy
from paude.cli import context as cx
from paude.cli.app import globals_of
from paude.cli.output import RichReporter
from paude.errors import ConfigError

DomainsArg = Annotated[
    list[str], typer.Argument(metavar="DOMAIN", help="Domains to allow, e.g. .example.com")
]
SessionOpt = Annotated[
    str | None, typer.Option("--session", help="Session name (default: this workspace's).")
]


def allow(ctx: typer.Context, domains: DomainsArg, session: SessionOpt = None) -> None:
    """Allow more domains in a running session, without restarting the agent."""
    g = globals_of(ctx)
    name = cx.session_name(session, cx.resolve_workspace(g.workspace))
    runner = cx.make_runner(g)
    try:
        entries = apply_allow(runner, run_find_proxy(runner, name), domains)
    except ValueError as err:
        raise ConfigError(str(err), hint="Example: paude allow .example.com") from err
    RichReporter(verbosity=g.verbosity).info(
        f"Session {name} now allows: {', '.join(entries)} (until its proxy is recreated)"
    )


def register(app: typer.Typer) -> None:
    """Add ``allow`` to ``app``."""
    app.command(name="allow", epilog="Example: paude allow .pypi.org files.pythonhosted.org")(allow)
