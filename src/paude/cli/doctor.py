"""``paude doctor``: check what sessions need, one line per check with its fix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from paude.cli import context as cx
from paude.cli.app import BackendOpt, globals_of
from paude.cli.output import print_json
from paude.errors import ConfigError

if TYPE_CHECKING:  # the checks load when doctor runs, not with every command
    from paude.config import LoadedConfig
    from paude.doctor.checks import Check


def _local_checks(g: cx.Globals, loaded: LoadedConfig | None) -> list[Check]:
    from paude.backends.images import agent_image_spec, proxy_image_spec
    from paude.doctor.checks import Check, CheckStatus
    from paude.doctor.local import (
        build_ca_check,
        ca_error_check,
        run_image_checks,
        run_podman_check,
        run_rlimit_check,
    )

    runner = cx.make_runner(g)
    podman = run_podman_check(runner)
    checks = [podman, run_rlimit_check()]
    if loaded is None:
        return checks
    workspace = cx.resolve_workspace(g.workspace)
    paths = loaded.config.extra_ca_certificates
    try:
        spec = cx.build_session_spec(loaded, workspace, cx.StartOptions())
    except ConfigError as err:  # the extra CA is the one file a spec reads
        return [*checks, ca_error_check(err),
                Check("images", CheckStatus.SKIP, "the extra CA must be fixed first")]
    checks.append(build_ca_check(paths, spec.ca_bundle))
    if podman.status is not CheckStatus.OK:
        return [*checks, Check("images", CheckStatus.SKIP, "podman must work first")]
    specs = [agent_image_spec(loaded.config, spec), proxy_image_spec(loaded.config)]
    return checks + run_image_checks(runner, specs)


def _cluster_checks(g: cx.Globals, loaded: LoadedConfig | None) -> list[Check]:
    from paude.doctor.checks import Check, CheckStatus

    if loaded is None:
        return []
    backend = loaded.config.backend
    if backend.type != "openshift":
        return [Check("cluster", CheckStatus.SKIP, f"the {backend.type} backend is configured"
                      " (paude doctor --backend openshift checks the cluster)")]
    from paude.doctor.cluster import run_cluster_checks

    def netpol(namespace: str) -> Check:
        from paude.backends.images import agent_image_spec
        from paude.doctor.netpol import NAME, run_netpol_check

        try:
            spec = cx.build_session_spec(loaded, cx.resolve_workspace(g.workspace),
                                         cx.StartOptions())
        except ConfigError:
            return Check(NAME, CheckStatus.SKIP, "the extra CA must be fixed first")
        return run_netpol_check(loaded.config, namespace, agent_image_spec(loaded.config, spec),
                                cx.make_runner(g))

    return run_cluster_checks(backend.context, g.openshift_namespace or backend.namespace,
                              netpol)


def doctor(
    ctx: typer.Context,
    json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    backend: BackendOpt = None,
) -> None:
    """Check podman, the images, the extra CA and the cluster: one line each, with the fix."""
    from paude.doctor.checks import Check, CheckStatus, render_checks

    g = globals_of(ctx)
    loaded: LoadedConfig | None = None
    checks: list[Check] = []
    try:
        workspace = cx.resolve_workspace(g.workspace)
        loaded = cx.load(g, workspace, cx.config_overrides(g, backend=backend))
        shown = ", ".join(loaded.sources) or "built-in defaults"
        checks.append(Check("config", CheckStatus.OK, f"backend {loaded.config.backend.type}"
                            f" (from {shown})"))
    except ConfigError as err:
        checks.append(Check("config", CheckStatus.FAIL, err.message, fix=err.hint))
    checks += _local_checks(g, loaded) + _cluster_checks(g, loaded)
    ok = all(c.status is not CheckStatus.FAIL for c in checks)
    if json:
        print_json({"ok": ok, "checks": [c.to_dict() for c in checks]})
    else:
        typer.echo(render_checks(checks), nl=False)
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to ``app``."""
    example = "Examples: paude doctor · paude doctor --backend openshift --json"
    app.command(name="doctor", epilog=example)(doctor)
