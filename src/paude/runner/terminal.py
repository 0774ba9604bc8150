"""Start a program on the user's terminal, with nothing heavy imported.

The quick reattach and exec (``paude.cli.fastpath``) use only this module:
no dataclasses, no typing, no logging, and for exec not even subprocess or
shutil (together ~40 ms of a ~150 ms ``podman exec``), so they cost little
more than ``podman exec`` itself.
"""

from __future__ import annotations

import os
import signal
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
    found = find_program(argv[0])
    if found is None:
        name = os.path.basename(argv[0])
        raise RuntimeMissingError(
            f"'{name}' is not installed or not on PATH",
            hint=INSTALL_HINTS.get(name, f"Install {name} and try again."),
        )
    return found


def find_program(program: str) -> str | None:
    """Return the executable ``program`` on PATH (``shutil.which``, without importing shutil)."""
    if os.path.dirname(program):
        return program if os.access(program, os.X_OK) and os.path.isfile(program) else None
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", program)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    return None


def run_on_terminal(
    argv: Sequence[str], *, started: Callable[[], None] | None = None
) -> tuple[int, str]:
    """Run ``argv`` on our terminal (stdin/stdout inherited); return (exit code, stderr).

    Only stderr is captured, so a failure of the child itself (not of the
    program it runs) can be read and explained. ``started`` is called once
    the child runs, for work that must not delay it. Unbounded: the user
    decides when to detach.
    """
    import subprocess

    exe = resolve(argv)
    if "logging" in sys.modules:
        from paude.redact import redact_argv

        debug("terminal: %s", redact_argv(argv))
    with subprocess.Popen([exe, *argv[1:]], stderr=subprocess.PIPE, text=True) as proc:
        if started is not None:
            started()
        _, stderr = proc.communicate()
    return proc.returncode, stderr or ""


def run_passing_stdio(
    argv: Sequence[str], *, hold: Callable[[bytes], bool]
) -> tuple[int, bytes]:
    """Run ``argv`` with our stdin and stdout; copy its stderr through as it comes.

    Return (exit code, held stderr). The first chunk of stderr is held back
    while ``hold(chunk)`` says so, until more stderr arrives or the child
    exits; then it is returned unwritten, for the caller to show or explain
    (the quick exec holds podman's own "Error: ..." line). Unbounded, like
    the command the user runs. On Ctrl+C the child is killed and
    ``KeyboardInterrupt`` propagates.
    """
    exe = resolve(argv)
    if "logging" in sys.modules:
        from paude.redact import redact_argv

        debug("stdio: %s", redact_argv(argv))
    read_end, write_end = os.pipe()  # both close-on-exec; dup2 makes the child's fd 2
    try:
        # SIGPIPE back to its default, as subprocess does (Python ignores it).
        pid = os.posix_spawn(exe, list(argv), os.environ, setsigdef=(signal.SIGPIPE,),
                             file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 2)])
    finally:
        os.close(write_end)
    try:
        with open(read_end, "rb", buffering=0, closefd=True) as pipe:
            held = _copy_stderr(pipe.fileno(), hold)
    except KeyboardInterrupt:
        os.kill(pid, signal.SIGKILL)  # as subprocess.run does, which the full CLI uses
        os.waitpid(pid, 0)
        raise
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), held


def _copy_stderr(fd: int, hold: Callable[[bytes], bool]) -> bytes:
    held = b""
    first = True
    out = sys.stderr.buffer
    while chunk := os.read(fd, 65536):
        if first and hold(chunk):
            held = chunk
        else:
            out.write(held + chunk)
            out.flush()
            held = b""
        first = False
    return held
