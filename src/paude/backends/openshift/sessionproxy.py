"""A running OpenShift session's proxy: what it denied, and live allowlist changes.

Everything goes through the API. ``blocked`` reads the pod log of the proxy
pod's ``access-log`` container (squid's access.log) and keeps the requests
from the session's agent pod. ``allow`` applies the new squid.conf to the
proxy's ConfigMap (and the namespace's EgressFirewall, when paude made one),
then follows the ``reload`` container's log until squid has the new config:
the kubelet updates a mounted ConfigMap on its next sync, within about a
minute. See backends/openshift/proxy.py for the two containers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from paude.backends.base import Reporter
from paude.backends.openshift.objects import (
    LABEL_PROXY,
    ROLE_AGENT,
    ROLE_PROXY,
    agent_pod_name,
    selector_labels,
)
from paude.backends.openshift.policies import build_firewall_update
from paude.backends.openshift.proxy import (
    ACCESS_LOG_CONTAINER,
    LOADED_MARKER,
    RELOAD_CONTAINER,
    SQUID_CONF_KEY,
    build_proxy_conf_update,
    conf_hash,
)
from paude.domains import Allowlist
from paude.errors import PaudeError, SessionNotFoundError
from paude.naming import LABEL_MANAGED_BY, LABEL_SESSION, MANAGED_BY
from paude.proxylog import BlockedDomain, build_blocked_domains, parse_access_log
from paude.squid import parse_squid_conf_entries

if TYPE_CHECKING:
    from paude.backends.openshift.client import KubeClient

# The kubelet's sync period (1 min by default) plus its jitter and a margin.
RELOAD_TIMEOUT = 180.0


def find_proxy_id(api: KubeClient, session: str) -> str:
    """Return the id of the proxy session ``session`` uses (from its StatefulSet's labels).

    Raises:
        SessionNotFoundError: no such session, or it runs with ``--allow-network``.
    """
    found = api.list_objects("apps/v1", "StatefulSet",
                             selector_labels(ROLE_AGENT) | {LABEL_SESSION: session})
    proxy = found[0]["metadata"].get("labels", {}).get(LABEL_PROXY) if found else None
    if not proxy:
        raise SessionNotFoundError(
            f"session {session!r} has no proxy (no such session, or it runs with"
            " --allow-network)", hint="Run: paude sessions")
    return str(proxy)


class OpenShiftSessionProxy:
    """The proxy Deployment one session uses (shared by sessions with the same allowlist)."""

    def __init__(self, api: KubeClient, session: str, reporter: Reporter) -> None:
        self.api = api
        self.session = session
        self.reporter = reporter
        self.proxy = find_proxy_id(api, session)

    def _running_pods(self) -> list[dict[str, Any]]:
        pods = self.api.list_objects("v1", "Pod", selector_labels(ROLE_PROXY, proxy=self.proxy))
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        if not running:
            raise PaudeError(
                f"the proxy of session {self.session} is not running, so its log cannot be read",
                hint="Run: paude --backend openshift --detach  (in the workspace) to restart it")
        return running

    def blocked(self) -> list[BlockedDomain]:
        """Return what the proxy denied the session's agent pod, the most recent first.

        The proxy may serve other sessions too; only requests from this
        session's pod address are kept.
        """
        pod = self.api.get("v1", "Pod", agent_pod_name(self.session)) or {}
        address = (pod.get("status") or {}).get("podIP")
        log = "".join(self.api.pod_log(p["metadata"]["name"], container=ACCESS_LOG_CONTAINER)
                      for p in self._running_pods())
        denied = [r for r in parse_access_log(log) if address is None or r.client == address]
        return build_blocked_domains(denied)

    def allow(self, entries: Sequence[str]) -> tuple[str, ...]:
        """Add ``entries`` to the proxy's ConfigMap and wait until squid has re-read it."""
        name = f"paude-proxy-{self.proxy}"
        configmap = self.api.get("v1", "ConfigMap", name)
        if configmap is None:
            raise PaudeError(f"the proxy ConfigMap {name} is missing",
                             hint="Run: paude --backend openshift --detach  (in the workspace)")
        current = (configmap.get("data") or {}).get(SQUID_CONF_KEY, "")
        allowlist = Allowlist.parse([*parse_squid_conf_entries(current), *entries])
        update = build_proxy_conf_update(configmap, allowlist)
        if update["data"][SQUID_CONF_KEY] == current:
            return allowlist.entries  # nothing new: squid already has it
        pods = self._running_pods()
        self._warn_shared()
        self._widen_firewall(allowlist)  # first, so squid never allows what OVN drops
        self.api.apply(update)
        marker = LOADED_MARKER + conf_hash(update["data"][SQUID_CONF_KEY])
        self.reporter.info(f"Waiting for the proxy of session {self.session} to load the new"
                           " allowlist (the cluster updates its config within about a minute)")
        for pod in pods:
            self.api.pod_log(pod["metadata"]["name"], container=RELOAD_CONTAINER, until=marker,
                             timeout=RELOAD_TIMEOUT)
        return allowlist.entries

    def _warn_shared(self) -> None:
        users = self.api.list_objects("apps/v1", "StatefulSet",
                                      selector_labels(ROLE_AGENT, proxy=self.proxy))
        others = sorted({u["metadata"]["labels"].get(LABEL_SESSION, "") for u in users}
                        - {self.session, ""})
        if others:
            self.reporter.warn(f"sessions {', '.join(others)} share this proxy (the same"
                               " allowlist): they are allowed the same")

    def _widen_firewall(self, allowlist: Allowlist) -> None:
        if not self.api.has_kind("k8s.ovn.org/v1", "EgressFirewall"):
            return
        firewall = self.api.get("k8s.ovn.org/v1", "EgressFirewall", "default")
        if firewall is None or firewall["metadata"].get("labels", {}).get(
                LABEL_MANAGED_BY) != MANAGED_BY:
            return  # none, or the namespace admin's own: paude never touches it
        update = build_firewall_update(firewall, allowlist)
        if update["spec"]["egress"] != firewall["spec"].get("egress"):
            self.api.apply(update)
