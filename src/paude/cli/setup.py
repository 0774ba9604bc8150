"""``paude setup --backend openshift``: put local credentials in the cluster, or print RBAC.

Re-running it rotates the Secrets and the ConfigMap (server-side apply); a
session start warns when they are missing or older than the local files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from paude.cli import context as cx
from paude.cli.app import globals_of
from paude.cli.output import RichReporter
from paude.errors import ConfigError

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


def _namespace(g: cx.Globals, explicit: str | None) -> tuple[str, str | None]:
    """Return the namespace and kubeconfig context to use."""
    workspace = cx.resolve_workspace(g.workspace)
    loaded = cx.load(g, workspace, cx.config_overrides(g, backend="openshift"))
    backend = loaded.config.backend
    namespace = explicit or backend.namespace
    if namespace is None:
        from paude.backends.openshift.client import load_kubeconfig

        namespace = load_kubeconfig(backend.context).namespace or "default"
    return namespace, backend.context


def print_rbac(namespace: str, user: str | None, service_account: str | None) -> None:
    """Write the Role (and a RoleBinding when a subject is named) as YAML on stdout."""
    from paude.backends.openshift.rbac import build_role, build_role_binding
    from paude.plan import render_yaml

    objs = [build_role(namespace)]
    if user:
        objs.append(build_role_binding(namespace, subject={"kind": "User", "name": user}))
    if service_account:
        subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
        objs.append(build_role_binding(namespace, subject=subject))
    sys.stdout.write(render_yaml(objs))
    if not (user or service_account):
        RichReporter().info("Add --user NAME or --service-account NAME to print a RoleBinding.")


def _local_sources(home: Path) -> list[tuple[Path, str]]:
    from paude.backends.openshift.credentials import credential_paths

    paths = credential_paths(cx.host_credentials(home))
    return [(path, kind) for kind, path in sorted(paths.items())]


def apply_credentials(namespace: str, context: str | None, home: Path) -> list[str]:
    """Create or refresh the credential objects from files under ``home``; return lines to print."""
    from paude.backends.openshift.client import KubeClient
    from paude.backends.openshift.credentials import CredentialSource, build_credential_object
    from paude.backends.openshift.objects import ClusterSettings

    client = KubeClient(context=context, namespace=namespace)
    settings = ClusterSettings(namespace=namespace)
    lines = []
    for path, kind in _local_sources(home):
        source = CredentialSource(kind, path.read_bytes(), int(path.stat().st_mtime))
        obj = client.apply(build_credential_object(source, settings))
        lines.append(f"Refreshed {obj['kind']} {obj['metadata']['name']} from {path}")
    return lines


def setup(
    ctx: typer.Context,
    *,
    backend: BackendOpt = "openshift",
    print_rbac_: PrintRbacOpt = False,
    user: UserOpt = None,
    service_account: ServiceAccountOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Create or refresh the session credentials in the cluster (gcloud ADC, .gitconfig)."""
    if backend != "openshift":
        raise ConfigError(
            f"the {backend} backend needs no setup", hint="Run: paude setup --backend openshift"
        )
    g = globals_of(ctx)
    ns, context = _namespace(g, namespace or g.openshift_namespace)
    if print_rbac_:
        print_rbac(ns, user, service_account)
        return
    reporter = RichReporter(verbosity=g.verbosity)
    lines = apply_credentials(ns, context, Path.home())
    if not lines:
        reporter.warn("no local credentials found (~/.config/gcloud ADC, ~/.gitconfig)")
    for line in lines:
        reporter.info(line)


def register(app: typer.Typer) -> None:
    """Add ``setup`` to ``app``."""
    app.command(name="setup", epilog="Examples: paude setup --backend openshift"
                " · paude setup --print-rbac --user alice")(setup)
