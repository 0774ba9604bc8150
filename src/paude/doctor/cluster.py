"""The checks of the cluster: kubeconfig, login, namespace and paude's RBAC (lightkube).

The RBAC check asks the API server what the user may do in the namespace
(one SelfSubjectRulesReview) and compares it with the Role paude documents
(:func:`paude.backends.openshift.rbac.build_role`); when the server says its
answer is incomplete (a webhook authorizer), each missing permission is asked
again as a SelfSubjectAccessReview. Both are allowed to every logged-in user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
from lightkube import ApiError, Client
from lightkube.models.authorization_v1 import (
    ResourceAttributes,
    SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReviewSpec,
)
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview, SelfSubjectRulesReview
from lightkube.resources.core_v1 import Namespace

from paude.backends.openshift.client import REQUEST_TIMEOUT, load_kubeconfig
from paude.backends.openshift.rbac import build_role
from paude.doctor.checks import Check, CheckStatus, find_missing_grants, render_grant
from paude.errors import NotLoggedInError

# Groups only OpenShift (image registry) or OVN-Kubernetes (EgressFirewall) serve.
OPTIONAL_GROUPS = {"image.openshift.io", "k8s.ovn.org"}
_NAMES = ("cluster login", "namespace", "rbac", "networkpolicy")


def _skipped(why: str) -> list[Check]:
    return [Check(name, CheckStatus.SKIP, why) for name in _NAMES]


def run_cluster_checks(
    context: str | None, namespace: str | None, netpol: Callable[[str], Check]
) -> list[Check]:
    """Return the kubeconfig, login, namespace, RBAC and NetworkPolicy checks.

    ``netpol(namespace)`` runs the NetworkPolicy probe; only once logged in.
    """
    try:
        config = load_kubeconfig(context)
    except NotLoggedInError as err:
        return [Check("kubeconfig", CheckStatus.FAIL, err.message, fix=err.hint),
                *_skipped("no kubeconfig")]
    ns = namespace or config.namespace or "default"
    server = config.cluster.server
    kube = Check("kubeconfig", CheckStatus.OK,
                 f"context {config.context_name}, server {server}, namespace {ns}")
    client = Client(config, namespace=ns, timeout=httpx2.Timeout(REQUEST_TIMEOUT))
    try:
        spec = SelfSubjectRulesReviewSpec(namespace=ns)
        review = client.create(SelfSubjectRulesReview(spec=spec))
    except httpx2.HTTPStatusError as err:  # ApiError, or an answer without a Status body
        return [kube, _login_failure(err, server), *_skipped("not logged in")[1:]]
    except httpx2.TransportError as err:
        return [kube, Check("cluster login", CheckStatus.FAIL,
                            f"cannot reach the cluster at {server}: {err}",
                            fix="Check the network or VPN, and the server in the kubeconfig."),
                *_skipped("cluster unreachable")[1:]]
    login = Check("cluster login", CheckStatus.OK, f"logged in to {server}")
    return [kube, login, _asked("namespace", lambda: _namespace_check(client, ns)),
            _asked("rbac", lambda: _rbac_check(client, ns, review)), netpol(ns)]


def _asked(name: str, check: Callable[[], Check]) -> Check:
    """Run a check that asks the API server; its failure is that check's line, not a crash."""
    try:
        return check()
    except httpx2.HTTPStatusError as err:
        code, message = _status(err)
        return Check(name, CheckStatus.FAIL, f"the API server answered {code}: {message}",
                     fix="Retry; if it persists, run: kubectl auth can-i --list")
    except httpx2.TransportError as err:
        return Check(name, CheckStatus.FAIL, f"the API server stopped answering: {err}",
                     fix="Check the network or VPN, then retry.")


def _status(err: httpx2.HTTPStatusError) -> tuple[int, str]:
    if isinstance(err, ApiError):
        return err.status.code or 0, err.status.message or str(err)
    return err.response.status_code, err.response.reason_phrase


def _login_failure(err: httpx2.HTTPStatusError, server: str) -> Check:
    code, message = _status(err)
    if code == 401:
        return Check("cluster login", CheckStatus.FAIL,
                     f"the cluster at {server} refused the credentials (401 Unauthorized)",
                     fix=f"Log in again: oc login {server} (or refresh the kubeconfig's token)")
    return Check("cluster login", CheckStatus.FAIL,
                 f"the cluster at {server} answered {code}: {message}",
                 fix="Run: kubectl auth can-i --list")


def _namespace_check(client: Client, ns: str) -> Check:
    try:
        client.get(Namespace, ns)
    except ApiError as err:
        if err.status.code == 404:
            return Check("namespace", CheckStatus.FAIL, f"namespace {ns} does not exist",
                         fix="Ask a cluster admin to create it, or set backend.namespace.")
        if err.status.code == 403:
            return Check("namespace", CheckStatus.OK,
                         f"{ns} (you may not read Namespace objects; paude does not need to)")
        raise
    return Check("namespace", CheckStatus.OK, f"{ns} exists")


def _still_missing(client: Client, ns: str, missing: list[tuple[str, str, str]]) -> list[Any]:
    left = []
    for verb, group, resource in missing:
        plural, _, sub = resource.partition("/")
        attrs = ResourceAttributes(namespace=ns, verb=verb, group=group, resource=plural,
                                   subresource=sub or None)
        answer = client.create(SelfSubjectAccessReview(
            spec=SelfSubjectAccessReviewSpec(resourceAttributes=attrs)))
        if not (answer.status and answer.status.allowed):
            left.append((verb, group, resource))
    return left


def _rbac_check(client: Client, ns: str, review: Any) -> Check:
    granted = [rule.to_dict() for rule in (review.status.resourceRules or [])]
    missing = find_missing_grants(build_role(ns)["rules"], granted)
    if missing and review.status.incomplete:
        missing = _still_missing(client, ns, missing)
    needed = [m for m in missing if m[1] not in OPTIONAL_GROUPS]
    fix = f"Ask a cluster admin to run: paude setup --print-rbac --namespace {ns} --user YOU"
    if needed:
        shown = ", ".join(render_grant(*m) for m in needed[:6])
        more = f" and {len(needed) - 6} more" if len(needed) > 6 else ""
        return Check("rbac", CheckStatus.FAIL, f"in {ns} you may not: {shown}{more}", fix=fix)
    if missing:
        shown = ", ".join(sorted({m[1] for m in missing}))
        return Check("rbac", CheckStatus.WARN,
                     f"paude's Role is granted except the optional {shown} rules", fix=fix)
    return Check("rbac", CheckStatus.OK, f"paude's Role is granted in {ns}")
