"""``paude setup --backend openshift``: put local credentials in the cluster, or print RBAC.

Re-running it rotates the Secrets and the ConfigMap (server-side apply); a
session start warns when they are missing or older than the local files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from paude.auth import NO_CREDENTIAL_HINT
from paude.cli import context as cx
from paude.cli.app import globals_of
from paude.cli.output import RichReporter
from paude.errors import ConfigError

if TYPE_CHECKING:
    from paude.config.models import BackendConfig

BackendOpt = Annotated[str, typer.Option("--backend", help="Only openshift needs setup.")]
PrintRbacOpt = Annotated[
    bool,
    typer.Option("--print-rbac", help="Print the Role and RoleBinding a cluster admin applies."),
]
UserOpt = Annotated[str | None, typer.Option("--user", help="User to bind the Role to.")]
ServiceAccountOpt = Annotated[
    str | None, typer.Option("--service-account", help="ServiceAccount to bind the Role to.")
]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", help="Namespace (default: config, then kubeconfig).")
]


def _backend_config(g: cx.Globals, namespace: str | None) -> BackendConfig:
    """Return the openshift section of the configuration, ``--namespace`` applied."""
    g.openshift_namespace = namespace or g.openshift_namespace
    workspace = cx.resolve_workspace(g.workspace)
    return cx.load(g, workspace, cx.config_overrides(g, backend="openshift")).config.backend


def print_rbac(config: BackendConfig, user: str | None, service_account: str | None) -> None:
    """Write the Role (and a RoleBinding when a subject is named) as YAML on stdout."""
    from paude.backends.openshift.cluster import build_rbac
    from paude.plan import render_yaml

    sys.stdout.write(render_yaml(build_rbac(config, user=user, service_account=service_account)))
    if not (user or service_account):
        RichReporter().info("Add --user NAME or --service-account NAME to print a RoleBinding.")


def setup(
    ctx: typer.Context,
    *,
    backend: BackendOpt = "openshift",
    print_rbac_: PrintRbacOpt = False,
    user: UserOpt = None,
    service_account: ServiceAccountOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Create or refresh the session credentials in the cluster (gcloud ADC, .gitconfig).

    Model credentials (podman needs no setup: each start hands them to the
    session's gateway, never to the agent). Set one on the host:
    Claude subscription: run `claude setup-token`, export CLAUDE_CODE_OAUTH_TOKEN.
    Anthropic API key: export ANTHROPIC_API_KEY.
    Vertex AI: `gcloud auth application-default login`, export
    CLAUDE_CODE_USE_VERTEX=1 ANTHROPIC_VERTEX_PROJECT_ID=... CLOUD_ML_REGION=...
    """
    if backend != "openshift":
        raise ConfigError(
            f"the {backend} backend needs no setup",
            hint="Model credentials come from the host at each start: " + NO_CREDENTIAL_HINT)
    from paude.backends.openshift.cluster import apply_credentials

    g = globals_of(ctx)
    config = _backend_config(g, namespace)
    if print_rbac_:
        print_rbac(config, user, service_account)
        return
    reporter = RichReporter(verbosity=g.verbosity)
    lines = apply_credentials(config, cx.host_credentials(Path.home()))
    if not lines:
        reporter.warn("no local credentials found (~/.config/gcloud ADC, ~/.gitconfig)")
    for line in lines:
        reporter.info(line)


def register(app: typer.Typer) -> None:
    """Add ``setup`` to ``app``."""
    app.command(name="setup", epilog="Examples: paude setup --backend openshift"
                " · paude setup --print-rbac --user alice")(setup)
