"""Start a program on the user's terminal, with nothing heavy imported.

The quick reattach (``paude.cli.fastpath``) uses only this module: no
dataclasses, no typing, no logging, so reattaching costs little more than
``podman exec`` itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from paude.errors import RuntimeMissingError

INSTALL_HINTS = {
    "podman": "Install podman (Debian/Ubuntu: apt-get install podman; Fedora: dnf install podman).",
    "oc": "Install the OpenShift CLI (oc) or kubectl.",
    "kubectl": "Install kubectl or the OpenShift CLI (oc).",
    "rsync": "Install rsync (apt-get install rsync).",
    "skopeo": "Install skopeo (Debian/Ubuntu: apt-get install skopeo; Fedora: dnf install skopeo).",
}


def debug(fmt: str, *args: object) -> None:
    """Log at debug level, if logging is in use at all.

    logging costs ~15 ms to import: the quick reattach never loads it, and the
    CLI loads it only for -v / PAUDE_DEBUG.
    """
    if "logging" in sys.modules:
        import logging

        logging.getLogger("paude.runner").debug(fmt, *args)


def resolve(argv: Sequence[str]) -> str:
    """Return the full path of ``argv[0]``.

    Raises:
        RuntimeMissingError: the program is not installed.
    """
    if not argv:
        raise ValueError("empty argv")
    found = shutil.which(argv[0])
    if found is None:
        name = os.path.basename(argv[0])
        raise RuntimeMissingError(
            f"'{name}' is not installed or not on PATH",
            hint=INSTALL_HINTS.get(name, f"Install {name} and try again."),
        )
    return found


def run_on_terminal(
    argv: Sequence[str], *, started: Callable[[], None] | None = None
) -> tuple[int, str]:
    """Run ``argv`` on our terminal (stdin/stdout inherited); return (exit code, stderr).

    Only stderr is captured, so a failure of the child itself (not of the
    program it runs) can be read and explained. ``started`` is called once
    the child runs, for work that must not delay it. Unbounded: the user
    decides when to detach.
    """
    exe = resolve(argv)
    if "logging" in sys.modules:
        from paude.redact import redact_argv

        debug("terminal: %s", redact_argv(argv))
    with subprocess.Popen([exe, *argv[1:]], stderr=subprocess.PIPE, text=True) as proc:
        if started is not None:
            started()
        _, stderr = proc.communicate()
    return proc.returncode, stderr or ""
