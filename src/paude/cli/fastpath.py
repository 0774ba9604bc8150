"""Reattach to, exec in or stop a podman session without loading the whole CLI.

(Reattaching to an OpenShift session has its own quick path, ``quick_openshift.py``.)

``paude`` or ``paude attach [SESSION]`` on a running session is the most
common command, ``paude exec [SESSION] -- CMD`` the one scripts call in a
loop, and ``paude stop [SESSION]`` what ends every session: they should feel
as quick as podman itself (loading Typer, Rich and pydantic costs ~0.3 s of
CPU). This module imports
only the standard library and paude's small leaf modules (no Typer, Rich or
pydantic) and makes exactly one podman call on the way in. Anything else, or
any doubt, returns ``None`` and the full CLI takes over, so every error is
still explained there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from paude.naming import LABEL_SESSION, derive_session_name

TYPE_CHECKING = False  # pathlib costs ~25 ms to import: this module uses os.path
if TYPE_CHECKING:
    from os import PathLike
    from typing import Any

    Cwd = str | PathLike[str]

# podman's own failures (no such container, not running, cannot exec):
# the container's program never ran, so the full CLI explains what is wrong.
_PODMAN_FAILED = {125, 126, 127}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def read_config_files(cwd: Cwd, env: Mapping[str, str]) -> list[dict[str, Any]] | None:
    """Return the user's and the project's paude.json as read (lowest first); ``None`` if in doubt.

    In doubt: a file that cannot be read or is not a JSON object (the full
    CLI reports it properly).
    """
    home = os.path.expanduser(env.get("HOME", "~"))
    xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    layers = []
    for path in (os.path.join(xdg, "paude", "paude.json"), os.path.join(cwd, "paude.json")):
        if not os.path.exists(path):
            continue
        import json  # only when there is a file to read (json costs ~7 ms)

        try:
            with open(path, encoding="utf-8") as handle:
                data = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        layers.append(data)
    return layers


def configured_backend(cwd: Cwd, env: Mapping[str, str]) -> str | None:
    """Return the backend the environment or config files name, or ``None`` when in doubt."""
    layers = read_config_files(cwd, env)
    if layers is None:
        return None
    backend = env.get("PAUDE_BACKEND") or "podman"
    for data in layers:
        section = data.get("backend", {})
        if not isinstance(section, dict):
            return None
        backend = section.get("type", backend) if not env.get("PAUDE_BACKEND") else backend
    return backend if isinstance(backend, str) else None


def _is_name(text: str) -> bool:
    """Say whether ``text`` is a session name (not an option such as ``--help``)."""
    return (0 < len(text) <= 40 and set(text) <= _NAME_CHARS
            and text[0] != "-" and text[-1] != "-")


def attach_name(argv: Sequence[str], cwd: Cwd) -> str | None:
    """Return the session a plain ``paude`` or ``paude attach [NAME]`` is for, or ``None``."""
    if list(argv) in ([], ["attach"]):
        return derive_session_name(cwd)
    if len(argv) == 2 and argv[0] == "attach" and _is_name(argv[1]):
        return argv[1]
    return None


def reattach_target(argv: Sequence[str], cwd: Cwd, env: Mapping[str, str], *,
                    backend: str = "podman") -> str | None:  # fmt: skip
    """Return the session a plain reattach on ``backend`` is for, or ``None`` (pure)."""
    name = attach_name(argv, cwd)
    return name if name is not None and configured_backend(cwd, env) == backend else None


def exec_target(
    argv: Sequence[str], cwd: Cwd, env: Mapping[str, str]
) -> tuple[str, list[str]] | None:
    """Return (session, command) of a plain podman ``paude exec``, or ``None`` (pure)."""
    if len(argv) < 3 or argv[0] != "exec":
        return None
    if argv[1] == "--":
        name, command = derive_session_name(cwd), list(argv[2:])
    elif argv[2] == "--" and _is_name(argv[1]):
        name, command = argv[1], list(argv[3:])
    else:
        return None
    if not command or configured_backend(cwd, env) != "podman":
        return None
    return name, command


def _is_podman_error(stderr: bytes) -> bool:
    return stderr.startswith(b"Error: ")


def _session_not_running(code: int, stderr: bytes) -> bool:
    """Say whether podman refused because the agent container is missing or stopped.

    podman 4.3 exits 125 for a missing container and 255 for a stopped one.
    """
    return code in {125, 255} and (b"no such container" in stderr or b"state improper" in stderr)


def try_exec(argv: Sequence[str]) -> int | None:
    """Run a command in a running podman session; ``None`` when the full CLI must decide.

    The agent container was created with the workspace as its working
    directory, so one ``podman exec`` is all it takes. When podman says the
    container is missing or stopped, the command never ran and the full CLI
    explains why (no session, or a stopped one).
    """
    if os.environ.get("PAUDE_DEBUG"):
        return None
    try:
        target = exec_target(argv, os.getcwd(), os.environ)
    except OSError:
        return None
    if target is None:
        return None
    from paude.backends.podman.names import Names, build_exec_argv
    from paude.runner.terminal import run_passing_stdio

    name, command = target
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    code, held = run_passing_stdio(build_exec_argv(Names(name), command, tty=tty),
                                   hold=_is_podman_error)
    if _session_not_running(code, held):
        return None
    sys.stderr.buffer.write(held)
    sys.stderr.flush()
    return code


def stop_target(argv: Sequence[str], cwd: Cwd, env: Mapping[str, str]) -> str | None:
    """Return the session a plain podman ``paude stop`` is for, or ``None`` (pure)."""
    if list(argv) == ["stop"]:
        name = derive_session_name(cwd)
    elif len(argv) == 2 and argv[0] == "stop" and _is_name(argv[1]):
        name = argv[1]
    else:
        return None
    return name if configured_backend(cwd, env) == "podman" else None


def try_stop(argv: Sequence[str]) -> int | None:
    """Stop a podman session; ``None`` when the full CLI must decide.

    The same removal as ``PodmanBackend.stop_session``, under the same
    session lock. Any failure (no such session, podman refusing) goes to the
    full CLI, which explains it (removing is idempotent).
    """
    if os.environ.get("PAUDE_DEBUG"):
        return None
    try:
        name = stop_target(argv, os.getcwd(), os.environ)
    except OSError:
        return None
    if name is None:
        return None
    from paude.backends.podman.removal import run_remove_session
    from paude.errors import PaudeError
    from paude.runner.system import SystemRunner
    from paude.session_lock import session_lock

    def say(message: str) -> None:
        sys.stderr.write(message + "\n")

    try:
        with session_lock(name, on_wait=say) as lock:
            run_remove_session(SystemRunner(), name)
            lock.discard()
    except PaudeError:
        return None
    say(f"Stopped session {name}")
    return 0


def try_quick(argv: Sequence[str]) -> int | None:
    """Take the quick path for ``argv`` if there is one; ``None`` for the full CLI."""
    if argv and argv[0] == "exec":
        return try_exec(argv)
    if argv and argv[0] == "stop":
        return try_stop(argv)
    return try_reattach(argv)


def _repair_proxy(name: str) -> None:
    """Restart the session's proxy if it stopped (the agent then has no network)."""
    from paude.backends.base import SessionStatus
    from paude.backends.podman.argv import Names, build_list_argv
    from paude.backends.podman.parse import group_sessions, parse_ps_json
    from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT, SystemRunner

    runner = SystemRunner()
    argv = [*build_list_argv(), "--filter", f"label={LABEL_SESSION}={name}"]
    listing = runner.run(argv, timeout=TIMEOUT_INSPECT, check=False)
    sessions = group_sessions(parse_ps_json(listing.stdout)) if listing.returncode == 0 else []
    if sessions and sessions[0].status is SessionStatus.DEGRADED:
        names = Names(name)
        runner.run(["podman", "start", names.proxy], timeout=TIMEOUT_CREATE, check=False)
        runner.run(["podman", "exec", names.agent, "tmux", "display-message",
                    "paude: restarted the proxy"], timeout=TIMEOUT_INSPECT, check=False)


def try_reattach(argv: Sequence[str]) -> int | None:
    """Attach to a running podman session; ``None`` when the full CLI must decide."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or os.environ.get("PAUDE_DEBUG"):
        return None
    try:
        cwd = os.getcwd()
        name = attach_name(argv, cwd)
        backend = configured_backend(cwd, os.environ) if name is not None else None
    except OSError:
        return None
    if name is not None and backend == "openshift":
        from paude.cli.quick_openshift import try_reattach as try_reattach_openshift

        return try_reattach_openshift(name, cwd, os.environ)
    if name is None or backend != "podman":
        return None
    import threading

    from paude.backends.podman.names import Names, build_attach_argv
    from paude.runner.terminal import run_on_terminal

    # The proxy check starts once the attach runs, beside it, so it adds no wait.
    repair = threading.Thread(target=_repair_proxy, args=(name,), daemon=True)
    code, stderr = run_on_terminal(build_attach_argv(Names(name)), started=repair.start)
    if repair.is_alive():
        repair.join(timeout=30)
    if code in _PODMAN_FAILED:
        return None
    sys.stderr.write(stderr)
    return code
