"""``paude``: start the workspace's session (or repair it) and attach."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace

from paude.backends.base import SessionSpec
from paude.cli import context as cx
from paude.cli.output import RichReporter
from paude.plan import render_plan
from paude.session_lock import session_lock


@dataclass(frozen=True)
class StartRequest:
    """What the user asked the root command for."""

    options: cx.StartOptions
    allow_domains: tuple[str, ...] = ()
    dry_run: bool = False
    detach: bool = False


def _warn_risky(opts: cx.StartOptions, reporter: RichReporter) -> None:
    if opts.allow_network:
        reporter.loud_warning("UNRESTRICTED NETWORK", [
            "--allow-network: the agent can reach ANY address on the internet and your",
            "local network. Nothing stops it from sending your code or credentials anywhere.",
        ])
    if opts.yolo:
        reporter.warn("--yolo: the agent runs every command without asking you first.")


def _warn_no_credential(spec: SessionSpec, reporter: RichReporter) -> None:
    from paude.auth import NO_CREDENTIAL_HINT

    if spec.model_auth is None and not spec.pass_credentials:
        where = "no credential found" if not spec.allow_network else \
            "--allow-network without --pass-credentials: the agent gets no credential"
        reporter.warn(f"the agent cannot reach a model ({where}). {NO_CREDENTIAL_HINT}")
    elif spec.model_auth is not None:
        reporter.info(f"Model calls go through the session's gateway "
                      f"({spec.model_auth.mode.value}, from {spec.model_auth.source})")


def run_start(g: cx.Globals, req: StartRequest, reporter: RichReporter) -> None:
    """Validate everything, then start (or repair) the session and attach to it."""
    from paude.cli import trust

    workspace = trust.open_workspace(g)
    loaded = cx.load(g, workspace, cx.config_overrides(g, allow_domains=req.allow_domains))
    for warning in loaded.warnings:
        reporter.warn(warning)
    clearance = trust.clear(g, workspace, loaded, dry_run=req.dry_run)  # before anything exists
    spec = replace(cx.build_session_spec(loaded, workspace, req.options),
                   guard_mounts=clearance.guard_mounts)
    backend = cx.make_backend(loaded, g)
    if req.dry_run:
        sys.stdout.write(render_plan(backend.plan_session(spec)))
        return
    _warn_risky(req.options, reporter)
    _warn_no_credential(spec, reporter)
    # One start or stop of a session at a time: a second `paude` waits, then
    # finds the running session.
    with session_lock(spec.name, on_wait=reporter.info), \
            reporter.status(f"Starting session {spec.name}"):
        backend.start_session(spec)  # returns at once when the session already runs
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if req.detach or not interactive:
        if not req.detach:
            reporter.info("Not a terminal: the session runs detached.")
        reporter.info(f"Attach with: paude attach {spec.name}")
        return
    os.environ.setdefault("PAUDE_SESSION", spec.name)
    raise SystemExit(backend.attach_session(spec.name))
