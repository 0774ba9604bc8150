"""Remove a podman session: its containers, networks, gateway secret and files, found by labels.

Light on imports (no pydantic, no Rich): both ``PodmanBackend.stop_session``
and the quick ``paude stop`` (``paude.cli.fastpath``) call
:func:`run_remove_session`.
"""

from __future__ import annotations

import json
import threading
from contextlib import suppress

from paude.backends.base import session_not_found
from paude.backends.podman.names import PODMAN, Names
from paude.backends.podman.secret import (
    build_secret_rm_argv,
    is_session_secret,
    run_find_secret,
)
from paude.backends.podman.state import claude_json_path, squid_conf_path
from paude.errors import PaudeError
from paude.naming import LABEL_MANAGED_BY, LABEL_SESSION, MANAGED_BY
from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from paude.runner import Runner


def _filters(session: str) -> list[str]:
    return ["--filter", f"label={LABEL_MANAGED_BY}={MANAGED_BY}",
            "--filter", f"label={LABEL_SESSION}={session}"]


def build_container_list_argv(session: str) -> list[str]:
    """Return argv listing ``session``'s containers as JSON, found by label."""
    return [PODMAN, "ps", "-a", "--format", "json", *_filters(session)]


def parse_container_names(ps_json: str) -> list[str]:
    """Return the container names in ``podman ps --format json`` output."""
    return [str((c.get("Names") or [""])[0]) for c in json.loads(ps_json or "[]") or []]


def build_network_names_argv(session: str) -> list[str]:
    """Return argv listing the names of ``session``'s networks, found by label."""
    return [PODMAN, "network", "ls", "--format", "{{.Name}}", *_filters(session)]


def build_remove_argvs(containers: list[str], networks: list[str],
                       secret: str | None = None) -> list[list[str]]:
    """Return the removal commands, in order: containers (killed, at once), then networks,
    then the gateway's credential secret ``secret`` (its name; ``None``: there is none).

    One ``podman rm`` removes all the containers in parallel; ``podman
    network rm -f`` would take them one by one (twice as slow, measured in
    bench/exec_stop.py). The networks' ``-f`` still releases any address
    left allocated to them. The secret goes last, after the gateway that
    mounts it.
    """
    argvs = []
    if containers:
        argvs.append([PODMAN, "rm", "-f", "-t", "0", "--ignore", *containers])
    if networks:
        argvs.append([PODMAN, "network", "rm", "-f", "-t", "0", *networks])
    if secret is not None:
        argvs.append(build_secret_rm_argv(secret))
    return argvs


def _listing(runner: Runner, session: str, key: str) -> list[str]:
    """Return the names of ``session``'s ``key`` (containers, networks, or its secret)."""
    if key == "secret":
        name = Names(session).gateway
        labels = run_find_secret(runner, name, timeout=TIMEOUT_INSPECT)
        return [name] if is_session_secret(labels, session) else []
    argv = (build_container_list_argv if key == "containers" else build_network_names_argv)(
        session)
    out = runner.run(argv, timeout=TIMEOUT_INSPECT).stdout
    return parse_container_names(out) if key == "containers" else out.split()


def run_remove_session(runner: Runner, session: str) -> None:
    """Remove every container, network and secret of ``session``, then its files.

    Containers and networks are found by label; the gateway's secret by its
    name, and removed only when its labels say it is the session's. It is
    removed even when its gateway container is not there (a start killed
    between creating the secret and the gateway): it holds the credential.

    Raises:
        SessionNotFoundError: nothing of that session exists.
        CommandFailedError: podman could not remove something.
    """
    found: dict[str, list[str]] = {}

    def in_thread(key: str) -> None:
        with suppress(PaudeError):  # left unfound: run again below, to raise its error
            found[key] = _listing(runner, session, key)

    # The three listings are independent: at once (each podman call costs ~0.1 s).
    others = [threading.Thread(target=in_thread, args=(key,)) for key in ("networks", "secret")]
    for thread in others:
        thread.start()
    try:
        found["containers"] = _listing(runner, session, "containers")
    finally:
        for thread in others:
            thread.join()
    for key in ("networks", "secret"):
        if key not in found:
            found[key] = _listing(runner, session, key)
    if not any(found.values()):
        raise session_not_found(session)
    secret = found["secret"][0] if found["secret"] else None
    for argv in build_remove_argvs(found["containers"], found["networks"], secret):
        runner.run(argv, timeout=TIMEOUT_CREATE)
    squid_conf_path(session).unlink(missing_ok=True)
    claude_json_path(session).unlink(missing_ok=True)
