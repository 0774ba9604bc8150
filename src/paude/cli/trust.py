"""``paude trust``: approve the workspace's paude.json and devcontainer files.

Also the one gate a start passes before anything is created
(:func:`open_workspace` then :func:`clear`): see :mod:`paude.trust.gate`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from paude.cli import context as cx
from paude.cli.app import globals_of
from paude.cli.output import RichReporter
from paude.config import LoadedConfig
from paude.trust.approval import Verdict, evaluate, load_record, name_files, save_record
from paude.trust.gate import Clearance, clear_workspace
from paude.trust.refuse import check_workspace


def _state() -> Path:
    from paude.backends.podman.state import state_dir

    return state_dir()


def open_workspace(g: cx.Globals) -> Path:
    """Return the workspace a session may be started in.

    Refused: /, ~, a workspace holding or inside host secrets, or paude's own
    config or state directory (the agent could approve itself there).
    """
    import os

    from paude.config.load import user_config_path

    workspace = cx.resolve_workspace(g.workspace)
    check_workspace(workspace, Path.home(), [user_config_path(os.environ).parent, _state()])
    return workspace


def show_verdict(verdict: Verdict) -> None:
    """Write what changed (one line each) and the diff to stderr."""
    lines = [f"  - {reason}" for reason in verdict.reasons]
    sys.stderr.write("What the workspace's configuration asks for:\n" + "\n".join(lines) + "\n")
    if verdict.diff:
        sys.stderr.write(verdict.diff)


def _ask(verdict: Verdict) -> bool:
    show_verdict(verdict)
    if not sys.stdin.isatty():
        return False  # the caller fails with the approving command
    return typer.confirm("Trust this configuration?", default=False, err=True)


def clear(g: cx.Globals, workspace: Path, loaded: LoadedConfig, *, dry_run: bool) -> Clearance:
    """Run the workspace gate, printing its warnings and notes on stderr."""
    clearance = clear_workspace(workspace, loaded, state=_state(), runner=cx.make_runner(g),
                                ask=None if dry_run else _ask, cwd=Path.cwd().resolve())
    reporter = RichReporter(verbosity=g.verbosity)
    for warning in clearance.warnings:
        reporter.warn(warning)
    for note in clearance.notes:
        reporter.info(note)
    return clearance


ShowOpt = Annotated[bool, typer.Option(
    "--show", help="Print what would be approved (a diff on stdout); approve nothing.")]


def trust(ctx: typer.Context, show: ShowOpt = False) -> None:
    """Approve this workspace's paude.json and devcontainer files (after you read them)."""
    g = globals_of(ctx)
    workspace = open_workspace(g)
    loaded = cx.load(g, workspace, cx.config_overrides(g))
    files = name_files(workspace, loaded.workspace_files)
    reporter = RichReporter(verbosity=g.verbosity)
    if not files:
        reporter.info(f"{workspace} has no paude.json or devcontainer file: nothing to trust")
        return
    verdict = evaluate(files, load_record(_state(), workspace))
    if verdict.trusted and not verdict.narrowed:
        reporter.info(f"The configuration of {workspace} is already trusted")
        return
    if show:
        sys.stdout.write("".join(f"# {r}\n" for r in verdict.reasons) + verdict.diff)
        return
    if verdict.reasons:
        show_verdict(verdict)
    save_record(_state(), workspace, files)
    reporter.info(f"Trusted {', '.join(sorted(files))} in {workspace}")


def register(app: typer.Typer) -> None:
    """Add ``trust`` to ``app``."""
    app.command(name="trust", epilog="Examples: paude trust --show · paude trust")(trust)
