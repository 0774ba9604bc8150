"""The Typer application and the root command: start a session or attach to it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from paude import __version__
from paude.cli import context as cx
from paude.cli.output import RichReporter

app = typer.Typer(
    name="paude",
    help="Run Claude Code in a sandbox: the agent reaches only an allowlist of domains.",
    epilog="Examples: paude (start or attach) · paude --allow-domain .pypi.org -d"
           " · paude sessions --json · paude doctor",
    no_args_is_help=False,
    add_completion=True,  # Typer's own: paude --install-completion / --show-completion
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

BackendOpt = Annotated[
    str | None,
    typer.Option("--backend", metavar="NAME", help="Backend: podman (default) or openshift."),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="Session name (default: workspace directory + path hash)."),
]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"paude {__version__}\n")
        raise typer.Exit()


def globals_of(ctx: typer.Context) -> cx.Globals:
    """Return the options given before the command."""
    g = ctx.find_root().obj
    assert isinstance(g, cx.Globals)
    return g


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    *,
    backend: BackendOpt = None,
    name: NameOpt = None,
    yolo: Annotated[bool, typer.Option(
        "--yolo", help="Skip the agent's permission prompts (--dangerously-skip-permissions)."
    )] = False,
    allow_network: Annotated[bool, typer.Option(
        "--allow-network", help="Give the agent unrestricted network access (no proxy)."
    )] = False,
    pass_credentials: Annotated[bool, typer.Option(
        "--pass-credentials", help="With --allow-network only: put the model credentials "
        "(API key, OAuth token, ~/.config/gcloud) inside the agent, as before the gateway."
    )] = False,
    allow_domain: Annotated[list[str] | None, typer.Option(
        "--allow-domain", metavar="DOMAIN",
        help="Also allow this domain ('.example.com' adds subdomains)."
    )] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the images.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the images, commands and files it would use; change nothing."
    )] = False,
    detach: Annotated[bool, typer.Option(
        "--detach", "-d", help="Start the session but do not attach to it."
    )] = False,
    workspace: Annotated[Path | None, typer.Option(
        "--workspace", "-w", metavar="DIR", help="The project directory (default: the current one)."
    )] = None,
    openshift_context: Annotated[str | None, typer.Option(
        "--openshift-context", metavar="CONTEXT",
        help="kubeconfig context for the openshift backend."
    )] = None,
    openshift_namespace: Annotated[str | None, typer.Option(
        "--openshift-namespace", metavar="NAMESPACE", help="Namespace for the openshift backend."
    )] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="Show commands and their output.")] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less output.")] = 0,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version."
    )] = False,
) -> None:
    """Start the session for this workspace, or attach to it if it runs.

    Arguments after `--` go to the agent, e.g. `paude -- --model opus`.
    """
    g = ctx.obj if isinstance(ctx.obj, cx.Globals) else cx.Globals()
    g.backend, g.verbosity, g.workspace = backend, verbose - quiet, workspace
    g.openshift_context, g.openshift_namespace = openshift_context, openshift_namespace
    ctx.obj = g
    if ctx.invoked_subcommand is not None:
        if name or yolo or allow_network or allow_domain or rebuild or dry_run or detach \
                or pass_credentials:
            raise typer.BadParameter(
                "start options go without a command: paude [OPTIONS] [-- AGENT_ARGS]")
        return
    from paude.cli.start import StartRequest, run_start

    if pass_credentials and not allow_network:
        raise typer.BadParameter("--pass-credentials needs --allow-network: with the "
                                 "proxy the credentials stay in the gateway")
    opts = cx.StartOptions(name=name, yolo=yolo, allow_network=allow_network,
                           rebuild=rebuild, claude_args=tuple(g.extra_args),
                           pass_credentials=pass_credentials)
    run_start(g, StartRequest(opts, tuple(allow_domain or ()), dry_run, detach),
              RichReporter(verbosity=g.verbosity))
