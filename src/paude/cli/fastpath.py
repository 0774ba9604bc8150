"""Reattach to a running podman session without loading the whole CLI.

``paude`` or ``paude attach [SESSION]`` on a running session is the most
common command, and it should feel as quick as ``podman exec``. This module
imports only the standard library and paude's small leaf modules (no Typer,
Rich or pydantic) and makes exactly one podman call on the way in. Anything
else, or any doubt, returns ``None`` and the full CLI takes over, so every
error is still explained there.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from paude.naming import LABEL_SESSION, derive_session_name

# podman's own failures (no such container, not running, cannot exec):
# the container's program never ran, so the full CLI explains what is wrong.
_PODMAN_FAILED = {125, 126, 127}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def _configured_backend(cwd: Path, env: Mapping[str, str]) -> str | None:
    """Return the backend the config files name, or ``None`` when in doubt."""
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    backend = env.get("PAUDE_BACKEND") or "podman"
    for path in (Path(xdg) / "paude" / "paude.json", cwd / "paude.json"):
        if not path.exists():
            continue
        import json  # only when there is a file to read (json costs ~7 ms)

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            section = data.get("backend", {})
            backend = section.get("type", backend) if not env.get("PAUDE_BACKEND") else backend
        except (OSError, ValueError, AttributeError):
            return None  # the full CLI reports the problem properly
    return backend if isinstance(backend, str) else None


def reattach_target(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str | None:
    """Return the session a plain podman reattach is for, or ``None`` (pure)."""
    if list(argv) in ([], ["attach"]):
        name = derive_session_name(cwd)
    elif len(argv) == 2 and argv[0] == "attach" and set(argv[1]) <= _NAME_CHARS and argv[1]:
        name = argv[1]
    else:
        return None
    return name if _configured_backend(cwd, env) == "podman" else None


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
        name = reattach_target(argv, Path.cwd(), os.environ)
    except OSError:
        return None
    if name is None:
        return None
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
