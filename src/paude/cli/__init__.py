"""The command-line interface. Only this package catches ``PaudeError``."""

from __future__ import annotations

import os
import sys

from paude.errors import EXIT_INTERRUPTED, EXIT_USAGE, PaudeError

TYPE_CHECKING = False  # typing costs ~10 ms to import; the quick reattach skips it
if TYPE_CHECKING:
    from typing import Any

    import typer


def split_extra_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` at the first ``--``: paude's own arguments, then the passed-on ones."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def _configure_logging(argv: list[str]) -> None:
    verbose = sum(a.count("v") for a in argv if a.startswith("-") and set(a[1:]) == {"v"})
    verbose += argv.count("--verbose")
    if verbose or os.environ.get("PAUDE_DEBUG"):
        import logging

        logging.basicConfig(level=logging.DEBUG, format="+ %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with its code."""
    args = list(sys.argv[1:] if argv is None else argv)
    # A real command line tries the quick reattach, exec or stop first; shell completion
    # (which runs a bare ``paude`` with _PAUDE_COMPLETE set) never does.
    if argv is None and "_PAUDE_COMPLETE" not in os.environ:
        from paude.cli.fastpath import try_quick

        try:
            code = try_quick(args)
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted\n")
            sys.exit(EXIT_INTERRUPTED)
        if code is not None:
            sys.exit(code)
    import typer

    import paude.cli.blocked  # noqa: F401 - registers blocked and allow
    from paude.cli import commands  # noqa: F401 - registers the subcommands
    from paude.cli.app import app
    from paude.cli.context import Globals
    from paude.cli.output import print_error

    own, extra = split_extra_args(args)
    _configure_logging(own)
    as_json = "--json" in own
    command = typer_command(app)
    try:
        code = command.main(own, prog_name="paude", obj=Globals(extra_args=extra),
                            standalone_mode=False)
    except PaudeError as err:
        if os.environ.get("PAUDE_DEBUG"):
            raise
        print_error(err, as_json=as_json)
        sys.exit(err.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.TyperException as err:  # usage errors: unknown option, bad value
        show = getattr(err, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"Error: {err.format_message()}\n")
        sys.exit(EXIT_USAGE)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("Interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def typer_command(app: typer.Typer) -> Any:
    """Return the click command behind the Typer ``app``."""
    import typer.main

    from paude.cli.helptext import polish_help

    return polish_help(typer.main.get_command(app))
