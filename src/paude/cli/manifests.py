"""``paude manifests [--output DIR]``: export the session's objects as YAML for GitOps.

Built offline by the same pure builders ``paude --backend openshift`` applies.
Secret values are never written: the StatefulSet references Secrets by name,
and the credential Secrets come from ``paude setup``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from paude.cli import context as cx
from paude.cli.app import globals_of
from paude.cli.output import RichReporter

OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", metavar="DIR", help="Directory for one YAML file per object."),
]
NameOpt = Annotated[str | None, typer.Option("--name", help="Session name.")]
AllowNetworkOpt = Annotated[
    bool, typer.Option("--allow-network", help="Export an unrestricted session.")
]
FirewallOpt = Annotated[
    bool, typer.Option("--egress-firewall", help="Add the OVN-Kubernetes EgressFirewall.")
]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", help="Namespace (default: config, then kubeconfig).")
]
AdminOpt = Annotated[
    bool,
    typer.Option("--admin", help="Add the cluster admin's objects: Role and AdminNetworkPolicies."),
]


def collect(
    ctx: typer.Context,
    opts: cx.StartOptions,
    *,
    firewall: bool,
    admin: bool,
    namespace: str | None = None,
) -> list[Any]:
    """Return every object to export, in apply order (the backend builds them)."""
    from paude.backends.openshift.cluster import build_export
    from paude.cli import trust

    g = globals_of(ctx)
    g.openshift_namespace = namespace or g.openshift_namespace
    workspace = trust.open_workspace(g)
    loaded = cx.load(g, workspace, cx.config_overrides(g, backend="openshift"))
    trust.clear(g, workspace, loaded, dry_run=False)  # exported objects get applied
    spec = cx.build_session_spec(loaded, workspace, opts)
    return build_export(loaded.config, spec, egress_firewall=firewall, admin=admin,
                        reporter=RichReporter(verbosity=g.verbosity))


def file_name(index: int, obj: dict[str, Any]) -> str:
    """Return ``NN-kind-name.yaml``: the prefix keeps the apply order in a directory listing."""
    return f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def manifests(
    ctx: typer.Context,
    *,
    output: OutputOpt = None,
    name: NameOpt = None,
    allow_network: AllowNetworkOpt = False,
    egress_firewall: FirewallOpt = False,
    admin: AdminOpt = False,
    namespace: NamespaceOpt = None,
) -> None:
    """Write the session's Kubernetes objects as YAML (stdout, or one file each in DIR)."""
    from paude.plan import render_yaml

    opts = cx.StartOptions(name=name, allow_network=allow_network)
    objs = collect(ctx, opts, firewall=egress_firewall, admin=admin, namespace=namespace)
    if output is None:
        sys.stdout.write(render_yaml(objs))
        return
    output.mkdir(parents=True, exist_ok=True)
    for index, obj in enumerate(objs, start=1):
        (output / file_name(index, obj)).write_text(render_yaml([obj]))
    RichReporter().info(f"Wrote {len(objs)} manifests to {output}")


def register(app: typer.Typer) -> None:
    """Add ``manifests`` to ``app``."""
    example = "Example: paude manifests --output deploy/ --egress-firewall"
    app.command(name="manifests", epilog=example)(manifests)
