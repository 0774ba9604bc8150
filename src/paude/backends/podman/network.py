"""The session's two networks, on subnets chosen without asking podman first.

* the internal network (no route out): the agent and the proxy;
* the egress network (routed): the proxy's way out, or an unrestricted
  agent's. Each session has its own: on podman's shared default network,
  every container that joins or leaves can change the bridge's MAC address
  (netavark leaves it unset until containers/netavark#833, after Debian
  bookworm's 1.4, so Linux gives the bridge the lowest MAC of its ports), and
  a container whose ARP cache still names the old MAC loses its gateway,
  every lookup and request with it, for up to a minute. A bridge whose only
  port is the proxy's never changes its MAC under the running proxy.

Choosing the subnets ourselves (deterministically from the session name)
tells us the proxy's address without a ``podman network inspect`` round trip,
and keeps that address across restarts of the proxy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Callable

from paude.backends.podman import argv as pa
from paude.errors import CommandFailedError, NameTakenError, PaudeError
from paude.naming import LABEL_MANAGED_BY, LABEL_SESSION, MANAGED_BY
from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT, Runner

SUBNET_POOL = ipaddress.ip_network("10.90.0.0/16")
EGRESS_POOL = ipaddress.ip_network("10.91.0.0/16")
ATTEMPTS = 16


def candidate_subnets(
    session: str, pool: ipaddress.IPv4Network | ipaddress.IPv6Network = SUBNET_POOL
) -> list[str]:
    """Return the /24 subnets of ``pool`` to try for ``session``, in order (pure)."""
    count = 2 ** (24 - pool.prefixlen)
    start = int(hashlib.sha256(session.encode()).hexdigest(), 16) % count
    subnets = list(pool.subnets(new_prefix=24))
    return [str(subnets[(start + i) % count]) for i in range(ATTEMPTS)]


def ensure_network(runner: Runner, names: pa.Names) -> str:
    """Create the session's internal network if needed; return its subnet.

    Raises:
        PaudeError: no free subnet was found in the pool.
    """
    return _ensure(runner, names.session, names.network, SUBNET_POOL,
                   lambda subnet: pa.build_network_create_argv(names, subnet=subnet))


def ensure_egress_network(runner: Runner, names: pa.Names, *, restricted: bool = True) -> str:
    """Create the session's egress network if needed; return its subnet.

    Raises:
        PaudeError: no free subnet was found in the pool.
    """
    return _ensure(runner, names.session, names.egress_network, EGRESS_POOL,
                   lambda subnet: pa.build_egress_network_create_argv(
                       names, subnet=subnet, restricted=restricted))


def _ensure(
    runner: Runner,
    session: str,
    network: str,
    pool: ipaddress.IPv4Network | ipaddress.IPv6Network,
    build: Callable[[str], list[str]],
) -> str:
    for subnet in candidate_subnets(session, pool):
        try:
            runner.run(build(subnet), timeout=TIMEOUT_CREATE)
        except CommandFailedError as err:
            if "already exists" in err.stderr:
                return _existing_subnet(runner, session, network)
            if "already used" in err.stderr:
                continue
            raise
        return subnet
    raise PaudeError(
        f"no free subnet for session {session} in {pool}",
        hint="Remove unused podman networks: podman network prune",
    )


def _existing_subnet(runner: Runner, session: str, network: str) -> str:
    found = runner.run(["podman", "network", "inspect", network], timeout=TIMEOUT_INSPECT)
    info = json.loads(found.stdout)[0]
    # Never join a network someone else made under our name: it could route anywhere.
    require_ours(info.get("labels"), session, what=f"network {network}")
    return str(info["subnets"][0]["subnet"])


def require_ours(labels: object, session: str, *, what: str) -> None:
    """Refuse an object named like one of ``session``'s that paude did not make for it.

    Raises:
        NameTakenError: its labels do not say paude made it for ``session``.
    """
    found = labels if isinstance(labels, dict) else {}
    if found.get(LABEL_MANAGED_BY) == MANAGED_BY and found.get(LABEL_SESSION) == session:
        return
    name = what.split()[-1]
    kind = "network" if what.startswith("network") else ""
    remove = f"podman {kind + ' ' if kind else ''}rm {name}"
    raise NameTakenError(
        f"a podman {what} already exists and is not paude's session {session}",
        hint=f"Remove it ({remove}) or choose another session name: paude --name OTHER")
