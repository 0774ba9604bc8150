"""The one place paude starts processes: this package, and nothing else.

``system`` runs commands for the CLI and the backends; ``terminal`` hands the
user's terminal to a program with nothing heavy imported (the quick reattach).
Names are loaded on first use, so importing ``paude.runner.terminal`` does not
pull in ``system``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from paude.runner.system import TIMEOUT_BUILD as TIMEOUT_BUILD
    from paude.runner.system import TIMEOUT_CREATE as TIMEOUT_CREATE
    from paude.runner.system import TIMEOUT_EXEC as TIMEOUT_EXEC
    from paude.runner.system import TIMEOUT_INSPECT as TIMEOUT_INSPECT
    from paude.runner.system import TIMEOUT_SYNC as TIMEOUT_SYNC
    from paude.runner.system import Result as Result
    from paude.runner.system import Runner as Runner
    from paude.runner.system import SystemRunner as SystemRunner
    from paude.runner.terminal import INSTALL_HINTS as INSTALL_HINTS
    from paude.runner.terminal import run_on_terminal as run_on_terminal

_SYSTEM = {"TIMEOUT_BUILD", "TIMEOUT_CREATE", "TIMEOUT_EXEC", "TIMEOUT_INSPECT",
           "TIMEOUT_SYNC", "Result", "Runner", "SystemRunner"}
_TERMINAL = {"INSTALL_HINTS", "run_on_terminal"}


def __getattr__(name: str) -> object:
    if name in _SYSTEM:
        from paude.runner import system

        return getattr(system, name)
    if name in _TERMINAL:
        from paude.runner import terminal

        return getattr(terminal, name)
    raise AttributeError(f"module 'paude.runner' has no attribute {name!r}")
