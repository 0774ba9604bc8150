"""``paude manifests [--output DIR]``: export the session's objects as YAML for GitOps.

Built offline by the same pure builders ``paude --backend openshift`` applies.
Secret values are never written: the StatefulSet references Secrets by name,
and the credential Secrets come from ``paude setup``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paude.cli import context as cx
from paude.cli.app import globals_of
from paude.cli.output import RichReporter

if TYPE_CHECKING:
    from paude.backends.base import SessionSpec
    from paude.backends.openshift.objects import ClusterSettings
    from paude.config.models import PaudeConfig

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
    """Return every object to export, in apply order."""
    from paude.backends.openshift.manifests import build_session_objects
    from paude.backends.openshift.objects import cluster_settings
    from paude.backends.openshift.policies import (
        build_admin_agent_policy,
        build_admin_proxy_policy,
    )
    from paude.backends.openshift.rbac import build_role
    from paude.cli import trust

    g = globals_of(ctx)
    workspace = trust.open_workspace(g)
    loaded = cx.load(g, workspace, cx.config_overrides(g, backend="openshift"))
    trust.clear(g, workspace, loaded, dry_run=False)  # exported objects get applied
    backend = loaded.config.backend
    namespace = namespace or g.openshift_namespace or backend.namespace
    if namespace is None:
        from paude.backends.openshift.client import load_kubeconfig

        namespace = load_kubeconfig(backend.context).namespace or "default"
    spec = cx.build_session_spec(loaded, workspace, opts)
    settings = pinned_images(
        cluster_settings(backend, namespace, egress_firewall=firewall), loaded.config, spec
    )
    objs: list[Any] = []
    if admin:
        objs += [build_role(namespace), build_admin_agent_policy(), build_admin_proxy_policy()]
    return objs + build_session_objects(spec, settings)


def pinned_images(
    settings: ClusterSettings, config: PaudeConfig, spec: SessionSpec
) -> ClusterSettings:
    """Return ``settings`` with the digests ``backend.registry`` holds (nothing is pushed).

    Without ``backend.registry`` the export stays offline (no cluster is
    asked for OpenShift's registry; ``paude --dry-run`` does that).
    """
    from paude.backends.openshift.imageregistry import build_configured_target
    from paude.backends.openshift.images import (
        apply_images,
        build_image_specs,
        check_session_images,
    )
    from paude.runner import SystemRunner

    target = build_configured_target(config.backend)
    if target is None or config.backend.image is not None:
        return settings
    specs = build_image_specs(config, spec)
    images = check_session_images(SystemRunner(), target, specs, reporter=RichReporter())
    return apply_images(settings, images)


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
