"""The least RBAC that paude needs in its namespace (``paude setup --print-rbac``).

The Kubernetes tests run paude as a user bound only to this Role, which proves
that it is enough.
"""

from __future__ import annotations

from typing import Any

from paude.naming import LABEL_MANAGED_BY, MANAGED_BY

ROLE_NAME = "paude-user"

# Server-side apply needs "patch" and, for a new object, "create"; waits need
# "watch"; stop needs "list" and "delete". No "update", no cluster scope, no
# access to RBAC objects. The StatefulSet controller creates the pods, not
# paude; "create" on pods grants nothing that "create" on statefulsets does
# not already (a StatefulSet is a pod template), and tests/k8s/conftest.py
# probes the binding with `auth can-i create pods`.
_RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["get", "list", "watch", "create"],
    },
    # kubectl/oc exec: "create" for SPDY, "get" for the WebSocket upgrade.
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["secrets", "configmaps", "services", "persistentvolumeclaims"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["statefulsets", "deployments"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    # The pods a Deployment made are found by their owner, a ReplicaSet.
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]},
    # The proxy's and gateway's Services have no selector: paude writes their
    # EndpointSlices (the usual `edit` role may not, since Kubernetes 1.22), and
    # deletes an Endpoints object left from when a Service had a selector.
    {
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get", "delete"]},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
    # OpenShift's image registry: "list" tells whether the cluster serves
    # ImageStreams (the OpenShift registry is used then); a push needs "update"
    # on imagestreams/layers (as in OpenShift's system:image-builder role) and
    # creates the image stream itself. Ignored by clusters without this API.
    {"apiGroups": ["image.openshift.io"], "resources": ["imagestreams"], "verbs": ["get", "list"]},
    {
        "apiGroups": ["image.openshift.io"],
        "resources": ["imagestreams/layers"],
        "verbs": ["get", "update"],
    },
    {
        "apiGroups": ["k8s.ovn.org"],
        "resources": ["egressfirewalls"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
]


def build_role(namespace: str) -> dict[str, Any]:
    """Return the Role paude needs in ``namespace``."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": ROLE_NAME,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "rules": [dict(rule) for rule in _RULES],
    }


def build_role_binding(namespace: str, *, subject: dict[str, str]) -> dict[str, Any]:
    """Return a RoleBinding granting :func:`build_role` to ``subject``.

    ``subject`` is a RBAC subject, e.g. ``{"kind": "User", "name": "alice"}`` or
    ``{"kind": "ServiceAccount", "name": "paude", "namespace": namespace}``.
    """
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": ROLE_NAME,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
        "subjects": [dict(subject)],
    }
