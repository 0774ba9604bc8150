"""Remove a podman session: its containers, networks, gateway secret and files, found by labels.

Light on imports (no pydantic, no Rich): both ``PodmanBackend.stop_session``
and the quick ``paude stop`` (``paude.cli.fastpath``) call
:func:`run_remove_session`.
"""

from __future__ import annotations

import json
import threading

from paude.backends.base import session_not_found
from paude.backends.podman.names import PODMAN, Names
from paude.backends.podman.state import claude_json_path, squid_conf_path
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
                       gateway: str | None = None) -> list[list[str]]:
    """Return the removal commands, in order: containers (killed, at once), then networks,
    then the gateway's credential secret when ``gateway`` (its name) is among the containers.

    One ``podman rm`` removes all the containers in parallel; ``podman
    network rm -f`` would take them one by one (twice as slow, measured in
    bench/exec_stop.py). The networks' ``-f`` still releases any address
    left allocated to them.
    """
    argvs = []
    if containers:
        argvs.append([PODMAN, "rm", "-f", "-t", "0", "--ignore", *containers])
    if networks:
        argvs.append([PODMAN, "network", "rm", "-f", "-t", "0", *networks])
    if gateway is not None and gateway in containers:
        argvs.append([PODMAN, "secret", "rm", gateway])  # the secret has the container's name
    return argvs


def run_remove_session(runner: Runner, session: str) -> None:
    """Remove every container and network labelled with ``session``, then its squid.conf.

    Raises:
        SessionNotFoundError: nothing of that session exists.
        CommandFailedError: podman could not remove something.
    """
    found: dict[str, list[str]] = {}

    def names(key: str, argv: list[str]) -> None:
        out = runner.run(argv, timeout=TIMEOUT_INSPECT).stdout
        found[key] = parse_container_names(out) if key == "containers" else out.split()

    # The two listings are independent: at once (each podman call costs ~0.1 s).
    other = threading.Thread(target=names, args=("networks", build_network_names_argv(session)))
    other.start()
    try:
        names("containers", build_container_list_argv(session))
    finally:
        other.join()
    if "networks" not in found:  # the listing failed; run it here to raise its error
        names("networks", build_network_names_argv(session))
    if not found["containers"] and not found["networks"]:
        raise session_not_found(session)
    gateway = Names(session).gateway
    for argv in build_remove_argvs(found["containers"], found["networks"], gateway):
        runner.run(argv, timeout=TIMEOUT_CREATE)
    squid_conf_path(session).unlink(missing_ok=True)
    claude_json_path(session).unlink(missing_ok=True)
