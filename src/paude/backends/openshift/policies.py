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
    ROLE_GATEWAY,
    ROLE_POLICY,
    ROLE_PROXY,
    ClusterSettings,
    labels,
    metadata,
    proxy_id,
    restricted_container_context,
    restricted_pod_fields,
    selector_labels,
)
from paude.domains import Allowlist, is_ip_literal, is_ip_range
from paude.gateway.policy import GATEWAY_PORT
from paude.naming import LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY
from paude.squid import PROXY_PORT

NS_NAME = "kubernetes.io/metadata.name"
# Every address outside the cluster, IPv4 and IPv6.
DENY_ALL_NETWORKS = ("0.0.0.0/0", "::/0")
ADMIN_POLICY_AGENT = "paude-agent-isolation"
ADMIN_POLICY_PROXY = "paude-proxy-isolation"
# The agent pod's init container that refuses to start the agent where
# NetworkPolicy is not enforced, and the exit code that says so.
NETPOL_CHECK_CONTAINER = "netpol-check"
NETPOL_CHECK_EXIT = 3
# The role of ``paude doctor``'s short-lived probe pod (build_probe_pod).
ROLE_PROBE = "netpol-probe"
# How long the check waits for the policy to take effect on a new pod (a
# controller programs it shortly after the pod appears), and each try's limit.
NETPOL_CHECK_SECONDS = 20
# A canary: the cluster DNS on TCP 53, which every cluster runs and the
# agent's policy blocks (it allows no DNS). Reached: nothing is enforced.
NETPOL_CHECK_SCRIPT = f"""\
ns=
while read -r key value _; do
  if [ "$key" = nameserver ]; then ns=$value; break; fi
done < /etc/resolv.conf
[ -n "$ns" ] || exit 0
end=$((SECONDS + {NETPOL_CHECK_SECONDS}))
while timeout 1 bash -c "exec 3<>/dev/tcp/$ns/53" 2>/dev/null; do
  if [ "$SECONDS" -ge "$end" ]; then
    echo "the agent pod reached the cluster DNS ($ns port 53), which its policy blocks" \\
      > /dev/termination-log
    exit {NETPOL_CHECK_EXIT}
  fi
  sleep 0.5  # poll until the policy is programmed for this new pod
done
"""


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


def build_netpol_check_container(image: str) -> dict[str, Any]:
    """Return the agent pod's init container that fails when NetworkPolicy is not enforced.

    It runs in the agent's pod, under the agent's policy, before the agent:
    while the cluster DNS answers on TCP 53 it retries (a controller applies
    a policy to a new pod shortly after it starts); still answering after
    ``NETPOL_CHECK_SECONDS``, it exits ``NETPOL_CHECK_EXIT`` and the start
    is refused. A canary, not a proof: a cluster without a DNS service, or
    one that enforces some rules only, passes it.
    """
    return {
        "name": NETPOL_CHECK_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["bash", "-c", NETPOL_CHECK_SCRIPT],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"cpu": "200m", "memory": "64Mi"}},  # fmt: skip
        "securityContext": restricted_container_context(),
    }


def build_probe_policy(name: str, settings: ClusterSettings) -> dict[str, Any]:
    """Return the deny-all NetworkPolicy of ``paude doctor``'s probe pod ``name``.

    The pod (:func:`build_probe_pod`) is owned by it: deleting the policy
    deletes the pod too (paude's Role may create pods, not delete them).
    """
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, settings, labels(ROLE_POLICY, session=name)),
        "spec": {"podSelector": {"matchLabels": labels(ROLE_PROBE, session=name)},
                 "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []},
    }  # fmt: skip


def build_probe_pod(name: str, settings: ClusterSettings, *, policy_uid: str) -> dict[str, Any]:
    """Return ``paude doctor``'s probe: a pod that runs the agent pod's own check, then exits.

    The check (:func:`build_netpol_check_container`) is its init container,
    as in the agent's pod, so a refusal reads the same: the pod ends
    ``Succeeded`` where its deny-all policy is enforced, and its check exits
    ``NETPOL_CHECK_EXIT`` where it is not. ``policy_uid`` makes the policy
    its owner.
    """
    check = build_netpol_check_container(settings.image)
    owner = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "name": name,
             "uid": policy_uid}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**metadata(name, settings, labels(ROLE_PROBE, session=name)),
                     "ownerReferences": [owner]},
        "spec": {**restricted_pod_fields(settings.pull_secret), "restartPolicy": "Never",
                 "initContainers": [check],
                 "containers": [{**check, "name": "done", "command": ["true"]}]},
    }  # fmt: skip


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


def build_firewall_update(firewall: dict[str, Any], entries: Allowlist) -> dict[str, Any]:
    """Return the apply object of an existing EgressFirewall that also allows ``entries``.

    Its rules stay as they are; the Allow rules of new entries go before the
    final Deny rules (OVN-Kubernetes evaluates them in order).
    """
    rules: list[dict[str, Any]] = list(firewall.get("spec", {}).get("egress") or [])
    cut = next((i for i, r in enumerate(rules) if r.get("type") == "Deny"), len(rules))
    added = [r for r in _firewall_rules(entries) if r["type"] == "Allow" and r not in rules]
    meta = firewall["metadata"]
    return {
        "apiVersion": "k8s.ovn.org/v1",
        "kind": "EgressFirewall",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                     "labels": dict(meta.get("labels") or {})},
        "spec": {"egress": [*rules[:cut], *added, *rules[cut:]]},
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
    (to the namespace's NetworkPolicies) egress to proxy pods on 3128/TCP and
    to gateway pods on the gateway's port, and deny every other egress, DNS
    included. A cluster admin applies it once.
    """
    def pods(role: str) -> dict[str, Any]:
        return {"pods": {"namespaceSelector": {},
                         "podSelector": {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY,
                                                         LABEL_ROLE: role}}}}

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
                    "to": [pods(ROLE_PROXY)],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": PROXY_PORT}}],
                },
                {
                    "name": "pass-gateway",
                    "action": "Pass",
                    "to": [pods(ROLE_GATEWAY)],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": GATEWAY_PORT}}],
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
