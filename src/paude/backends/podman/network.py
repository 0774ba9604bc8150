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

Choosing the subnets ourselves (deterministically from the session name, the
first candidate no existing network overlaps: see ``planning.py``) puts the
proxy's address in the plan, and keeps it across restarts of the proxy.
"""

from __future__ import annotations

import hashlib
import ipaddress

from paude.errors import NameTakenError
from paude.naming import LABEL_MANAGED_BY, LABEL_SESSION, MANAGED_BY

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


def require_ours(labels: object, session: str, *, what: str) -> None:
    """Refuse an object named like one of ``session``'s that paude did not make for it.

    Raises:
        NameTakenError: its labels do not say paude made it for ``session``.
    """
    found = labels if isinstance(labels, dict) else {}
    if found.get(LABEL_MANAGED_BY) == MANAGED_BY and found.get(LABEL_SESSION) == session:
        return
    name = what.split()[-1]
    kind = what.split()[0] if what.startswith(("network", "secret")) else ""
    remove = f"podman {kind + ' ' if kind else ''}rm {name}"
    raise NameTakenError(
        f"a podman {what} already exists and is not paude's session {session}",
        hint=f"Remove it ({remove}) or choose another session name: paude --name OTHER")
