"""``paude allow DOMAIN... [--session S]``: allow more destinations in a running session.

The proxy re-reads its config; the agent keeps running and its open
connections stay up. The change lasts as long as the proxy: add the domain to
``allowed_domains`` in paude.json (or pass ``--allow-domain``) to keep it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from paude.cli.app import BackendOpt
from paude.cli.commands import open_backend, target
from paude.cli.output import RichReporter
from paude.errors import ConfigError

DomainsArg = Annotated[
    list[str], typer.Argument(metavar="DOMAIN", help="Domains to allow, e.g. .example.com")
]
SessionOpt = Annotated[
    str | None, typer.Option("--session", help="Session name (default: this workspace's).")
]


def allow(ctx: typer.Context, domains: DomainsArg, session: SessionOpt = None,
          backend: BackendOpt = None) -> None:
    """Allow more domains in a running session, without restarting the agent."""
    be, g = open_backend(ctx, backend)
    name = target(g, session)
    try:
        entries = be.session_proxy(name).allow(domains)
    except ValueError as err:
        raise ConfigError(str(err), hint="Example: paude allow .example.com") from err
    RichReporter(verbosity=g.verbosity).info(
        f"Session {name} now allows: {', '.join(entries)} (until its proxy is recreated)"
    )


def register(app: typer.Typer) -> None:
    """Add ``allow`` to ``app``."""
    app.command(name="allow", epilog="Example: paude allow .pypi.org files.pythonhosted.org")(allow)
