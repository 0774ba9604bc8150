"""Help text without type placeholders: ``--json``, not ``--json <bool>``.

Typer prints each parameter's Python type after it (``<bool>``, ``<str>``,
``<list[str]>``). That says nothing to a user, so the command tree gets
metavars instead: none for a flag or counter, the value's name in capitals
for an option or argument (``--workspace DIR``, ``[SESSION]``).
"""

from __future__ import annotations

from typing import Any


def _no_type(ctx: Any) -> None:
    return None


def _polish_param(param: Any) -> None:
    if getattr(param, "param_type_name", "") == "argument":
        if param.metavar is None:
            param.metavar = param.name.upper()
        param.display_type_rich = _no_type  # the name column already says it
    elif getattr(param, "is_flag", False) or getattr(param, "count", False):
        param.metavar = ""
    elif param.metavar is None:
        param.metavar = param.name.upper()


def _bare_help_option(command: Any) -> None:
    made = command.get_help_option  # built per command on first use, then cached

    def get_help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


def polish_help(command: Any) -> Any:
    """Give every parameter in ``command``'s tree a metavar; return ``command``."""
    for param in command.params:
        _polish_param(param)
    _bare_help_option(command)
    for sub in getattr(command, "commands", {}).values():
        polish_help(sub)
    return command
