"""Pure builders for network isolation: NetworkPolicies, EgressFirewall, AdminNetworkPolicy.

NetworkPolicies are allow-lists that union: any policy in the namespace that
selects the agent pods (``podSelector: {}`` included) adds to what they may
do, and no NetworkPolicy can take that back. paude's policies therefore make
the agent as closed as a namespace admin lets it be; only the cluster-scoped
AdminNetworkPolicy built here (applied by a cluster admin) makes the
isolation hold against other NetworkPolicies. docs/openshift.md says which
guarantee holds in which setup.
"""

from __future__ import annotations

from typing import Any

from paude.backends.openshift.objects import (
    LABEL_PROXY,
    ROLE_AGENT,
    ROLE_POLICY,
    ROLE_PROXY,
    ClusterSettings,
    labels,
    metadata,
    proxy_id,
    selector_labels,
)
from paude.domains import Allowlist, is_ip_literal, is_ip_range
from paude.naming import LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY
from paude.squid import PROXY_PORT

NS_NAME = "kubernetes.io/metadata.name"
# Every address outside the cluster, IPv4 and IPv6.
DENY_ALL_NETWORKS = ("0.0.0.0/0", "::/0")
ADMIN_POLICY_AGENT = "paude-agent-isolation"
ADMIN_POLICY_PROXY = "paude-proxy-isolation"


def build_agent_policy(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the policy of the agent pods of one allowlist.

    It selects them for both directions and allows no ingress at all, and
    egress only to their proxy's pods on 3128/TCP. No DNS: the agent reaches
    its proxy by the Service's ClusterIP, and a name it cannot resolve
    cannot carry data out in a lookup either.
    """
    pid = proxy_id(domains)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(f"paude-agents-{pid}", settings, labels(ROLE_POLICY, proxy=pid)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(ROLE_AGENT, proxy=pid)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                {
                    "to": [
                        {"podSelector": {"matchLabels": selector_labels(ROLE_PROXY, proxy=pid)}}
                    ],
                    "ports": [{"protocol": "TCP", "port": PROXY_PORT}],
                },
            ],
        },
    }


def build_open_agent_policy(session: str, settings: ClusterSettings) -> dict[str, Any]:
    """Return the policy of an ``--allow-network`` session: any egress, still no ingress."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(
            f"paude-{session}-no-ingress", settings, labels(ROLE_POLICY, session=session)
        ),
        "spec": {
            "podSelector": {"matchLabels": labels(ROLE_AGENT, session=session)},
            "policyTypes": ["Ingress"],
            "ingress": [],
        },
    }


def build_proxy_policy(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the policy letting only the allowlist's agent pods reach its proxy on 3128/TCP."""
    pid = proxy_id(domains)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(f"paude-proxy-{pid}", settings, labels(ROLE_POLICY, proxy=pid)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(ROLE_PROXY, proxy=pid)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": selector_labels(ROLE_AGENT, proxy=pid)}}
                    ],
                    "ports": [{"protocol": "TCP", "port": PROXY_PORT}],
                }
            ],
        },
    }


def _firewall_rules(domains: Allowlist) -> list[dict[str, Any]]:
    """Allow each entry (an address or range by CIDR, a name by DNS), then deny IPv4 and IPv6."""
    rules: list[dict[str, Any]] = []
    for entry in domains:
        if is_ip_literal(entry):
            suffix = "/128" if ":" in entry else "/32"
            rules.append({"type": "Allow", "to": {"cidrSelector": entry + suffix}})
        elif is_ip_range(entry):
            rules.append({"type": "Allow", "to": {"cidrSelector": entry}})
        elif entry.startswith("."):
            rules.append({"type": "Allow", "to": {"dnsName": entry[1:]}})
            rules.append({"type": "Allow", "to": {"dnsName": "*" + entry}})
        else:
            rules.append({"type": "Allow", "to": {"dnsName": entry}})
    rules += [{"type": "Deny", "to": {"cidrSelector": net}} for net in DENY_ALL_NETWORKS]
    return rules


def build_egress_firewall(domains: Allowlist, settings: ClusterSettings) -> dict[str, Any]:
    """Return the OVN-Kubernetes EgressFirewall (defence in depth, whole namespace).

    OVN-Kubernetes allows one EgressFirewall per namespace, named ``default``;
    it applies to every pod of the namespace (the proxy too), so it allows the
    allowlist's hosts and denies every other address outside the cluster.
    """
    return {
        "apiVersion": "k8s.ovn.org/v1",
        "kind": "EgressFirewall",
        "metadata": metadata("default", settings, labels(ROLE_POLICY)),
        "spec": {"egress": _firewall_rules(domains)},
    }


def _paude_pods(role: str, namespaces: dict[str, Any]) -> dict[str, Any]:
    selector: dict[str, Any] = {
        "matchLabels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ROLE: role},
        "matchExpressions": [{"key": LABEL_PROXY, "operator": "Exists"}],
    }
    return {"pods": {"namespaceSelector": namespaces, "podSelector": selector}}


def build_admin_agent_policy(priority: int = 20) -> dict[str, Any]:
    """Return a cluster-scoped AdminNetworkPolicy that NetworkPolicies cannot widen.

    For restricted agent pods in every namespace: deny all ingress; pass
    (to the namespace's NetworkPolicies) egress to proxy pods on 3128/TCP,
    and deny every other egress, DNS included. A cluster admin applies it once.
    """
    proxies = {
        "pods": {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ROLE: ROLE_PROXY}},
        }
    }
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": ADMIN_POLICY_AGENT, "labels": labels(ROLE_POLICY)},
        "spec": {
            "priority": priority,
            "subject": _paude_pods(ROLE_AGENT, {}),
            "ingress": [{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}],
            "egress": [
                {
                    "name": "pass-proxy",
                    "action": "Pass",
                    "to": [proxies],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": PROXY_PORT}}],
                },
                {
                    "name": "deny-rest",
                    "action": "Deny",
                    "to": [{"namespaces": {}}, {"networks": list(DENY_ALL_NETWORKS)}],
                },
            ],
        },
    }


def build_admin_proxy_policy(priority: int = 21) -> dict[str, Any]:
    """Return the AdminNetworkPolicy letting only agent pods reach proxy pods."""
    agents = _paude_pods(ROLE_AGENT, {})
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": ADMIN_POLICY_PROXY, "labels": labels(ROLE_POLICY)},
        "spec": {
            "priority": priority,
            "subject": {
                "pods": {
                    "namespaceSelector": {},
                    "podSelector": {
                        "matchLabels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ROLE: ROLE_PROXY}
                    },
                }
            },
            "ingress": [
                {
                    "name": "pass-agents",
                    "action": "Pass",
                    "from": [agents],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": PROXY_PORT}}],
                },
                {"name": "deny-rest", "action": "Deny", "from": [{"namespaces": {}}]},
            ],
        },
    }
