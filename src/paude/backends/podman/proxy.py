"""The running squid proxy of a podman session: what it denied, and live allowlist changes.

Pure parts (``parse_*``, ``build_*``) read text and return data; the
``run_*``/``apply_*`` functions and :class:`PodmanSessionProxy` (what the
backend hands ``paude blocked``/``paude allow``) touch podman or files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from paude.domains import Allowlist
from paude.errors import PaudeError, SessionNotFoundError
from paude.facts import SQUID_CONF_PATH
from paude.naming import LABEL_MANAGED_BY, LABEL_ROLE, LABEL_SESSION, MANAGED_BY
from paude.proxylog import (
    BlockedDomain,
    DeniedRequest,
    build_blocked_domains,
    parse_access_log,
)
from paude.runner import TIMEOUT_EXEC, TIMEOUT_INSPECT, Runner
from paude.squid import (
    ACCESS_LOG,
    parse_squid_conf_clients,
    parse_squid_conf_entries,
    render_squid_conf,
)

# Re-exported: the log and config parsers are shared with the OpenShift backend.
__all__ = ["BlockedDomain", "DeniedRequest", "build_blocked_domains", "parse_access_log",
           "parse_squid_conf_clients", "parse_squid_conf_entries"]


def build_find_proxy_argv(session: str) -> list[str]:
    """Return argv finding the session's proxy container by its labels."""
    return [
        "podman",
        "ps",
        "-a",
        "--format",
        "json",
        "--filter",
        f"label={LABEL_MANAGED_BY}={MANAGED_BY}",
        "--filter",
        f"label={LABEL_SESSION}={session}",
        "--filter",
        f"label={LABEL_ROLE}=proxy",
    ]


def build_read_log_argv(proxy: str) -> list[str]:
    """Return argv printing the proxy's access.log (owned by squid's user)."""
    return ["podman", "exec", "-u", "proxy", proxy, "cat", ACCESS_LOG]


def build_reload_argv(proxy: str) -> list[str]:
    """Return argv making squid re-read its config.

    squid is the container's PID 1 and has no pid file (``pid_filename none``),
    so ``squid -k reconfigure`` cannot find it; SIGHUP is the same request.
    """
    return ["podman", "kill", "--signal", "HUP", proxy]


@dataclass(frozen=True)
class Proxy:
    """A session's proxy container, as podman reports it."""

    name: str
    running: bool
    conf_path: Path | None  # the host file mounted as squid.conf


def parse_proxy(ps_json: str, inspect_json: str | None) -> Proxy | None:
    """Return the proxy from ``podman ps`` and ``podman inspect`` output, or ``None``."""
    found = json.loads(ps_json or "[]") or []
    if not found:
        return None
    name = str((found[0].get("Names") or [""])[0])
    running = str(found[0].get("State", "")).lower() == "running"
    conf = None
    for mount in (json.loads(inspect_json)[0].get("Mounts") or []) if inspect_json else []:
        if mount.get("Destination") == SQUID_CONF_PATH:
            conf = Path(str(mount.get("Source")))
    return Proxy(name, running, conf)


def run_find_proxy(runner: Runner, session: str) -> Proxy:
    """Return the session's proxy.

    Raises:
        SessionNotFoundError: the session has no proxy (it does not exist, or
            it runs with ``--allow-network``).
    """
    ps = runner.run(build_find_proxy_argv(session), timeout=TIMEOUT_INSPECT).stdout
    if not (json.loads(ps or "[]") or []):
        raise SessionNotFoundError(
            f"session {session!r} has no proxy (no such session, or it runs with --allow-network)",
            hint="Run: paude sessions",
        )
    name = str(json.loads(ps)[0]["Names"][0])
    inspect = runner.run(["podman", "inspect", name], timeout=TIMEOUT_INSPECT).stdout
    proxy = parse_proxy(ps, inspect)
    assert proxy is not None
    return proxy


def run_read_blocked(runner: Runner, proxy: Proxy) -> list[BlockedDomain]:
    """Return what the proxy denied so far, the most recent first.

    Raises:
        PaudeError: the proxy is not running (its log lives in the container).
    """
    if not proxy.running:
        raise PaudeError(
            f"the proxy {proxy.name} is not running, so its log cannot be read",
            hint="Run: paude --detach  (in the workspace) to restart it",
        )
    log = runner.run(build_read_log_argv(proxy.name), timeout=TIMEOUT_EXEC).stdout
    return build_blocked_domains(parse_access_log(log))


def apply_allow(runner: Runner, proxy: Proxy, domains: Sequence[str]) -> tuple[str, ...]:
    """Add ``domains`` to the running proxy's allowlist without restarting anything.

    The squid.conf on the host is rewritten in place (the container sees the
    same inode through its bind mount) and squid re-reads it. Returns the new
    allowlist.

    Raises:
        ValueError: a domain is not a valid allowlist entry.
        PaudeError: the proxy is not running or its config file is unknown.
    """
    if proxy.conf_path is None or not proxy.running:
        raise PaudeError(
            f"the proxy {proxy.name} is not running with a paude squid.conf",
            hint="Run: paude --allow-domain DOMAIN  (restarts the proxy)",
        )
    current = proxy.conf_path.read_text(encoding="utf-8")
    allowlist = Allowlist.parse([*parse_squid_conf_entries(current), *domains])
    text = render_squid_conf(allowlist, clients=parse_squid_conf_clients(current))
    with proxy.conf_path.open("r+", encoding="utf-8") as handle:
        handle.truncate(0)
        handle.write(text)
    runner.run(build_reload_argv(proxy.name), timeout=TIMEOUT_INSPECT)
    return allowlist.entries


class PodmanSessionProxy:
    """The proxy container of one podman session (a ``SessionProxy``)."""

    def __init__(self, runner: Runner, proxy: Proxy) -> None:
        self.runner = runner
        self.proxy = proxy

    def blocked(self) -> list[BlockedDomain]:
        """Return what the proxy denied so far, the most recent first."""
        return run_read_blocked(self.runner, self.proxy)

    def allow(self, entries: Sequence[str]) -> tuple[str, ...]:
        """Add ``entries`` to the running proxy's allowlist; return the new allowlist."""
        return apply_allow(self.runner, self.proxy, entries)
