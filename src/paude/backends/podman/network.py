"""The session's internal network: a subnet chosen without asking podman first.

Choosing the subnet ourselves (deterministically from the session name) tells
us the proxy's address without a ``podman network inspect`` round trip, and
keeps that address across restarts of the proxy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json

from paude.backends.podman import argv as pa
from paude.errors import CommandFailedError, PaudeError
from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT, Runner

SUBNET_POOL = ipaddress.ip_network("10.90.0.0/16")
ATTEMPTS = 16


def candidate_subnets(session: str) -> list[str]:
    """Return the /24 subnets to try for ``session``, in order (pure)."""
    count = 2 ** (24 - SUBNET_POOL.prefixlen)
    start = int(hashlib.sha256(session.encode()).hexdigest(), 16) % count
    subnets = list(SUBNET_POOL.subnets(new_prefix=24))
    return [str(subnets[(start + i) % count]) for i in range(ATTEMPTS)]


def ensure_network(runner: Runner, names: pa.Names) -> str:
    """Create the session's internal network if needed; return its subnet.

    Raises:
        PaudeError: no free subnet was found in the pool.
    """
    for subnet in candidate_subnets(names.session):
        argv = pa.build_network_create_argv(names, subnet=subnet)
        try:
            runner.run(argv, timeout=TIMEOUT_CREATE)
        except CommandFailedError as err:
            if "already exists" in err.stderr:
                return _existing_subnet(runner, names)
            if "already used" in err.stderr:
                continue
            raise
        return subnet
    raise PaudeError(
        f"no free subnet for session {names.session} in {SUBNET_POOL}",
        hint="Remove unused podman networks: podman network prune",
    )


def _existing_subnet(runner: Runner, names: pa.Names) -> str:
    found = runner.run(["podman", "network", "inspect", names.network], timeout=TIMEOUT_INSPECT)
    return str(json.loads(found.stdout)[0]["subnets"][0]["subnet"])
