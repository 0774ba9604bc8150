"""KubeClient's error boundary, with lightkube talking to an in-process HTTP handler."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from paude.backends.openshift.client import KubeClient
from paude.errors import ClusterError

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://cluster.invalid:6443"}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: ctx, context: {cluster: c, user: u, namespace: team-a}}]
current-context: ctx
"""
Handler = Callable[[httpx2.Request], httpx2.Response]


def status(code: int, message: str, reason: str) -> httpx2.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip
    return httpx2.Response(code, json=body)


@pytest.fixture
def make_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], KubeClient]:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(config))

    def make(handler: Handler) -> KubeClient:
        return KubeClient(context=None, namespace=None, transport=httpx2.MockTransport(handler))

    return make


def test_namespace_comes_from_the_context(make_client: Callable[[Handler], KubeClient]) -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.method} {request.url.path} {request.headers['authorization']}")
        return httpx2.Response(200, json={"kind": "StatefulSetList", "items": [],
                                          "metadata": {}})  # fmt: skip

    client = make_client(handler)
    assert client.list_objects("apps/v1", "StatefulSet", {"a": "b"}) == []
    assert seen == ["GET /apis/apps/v1/namespaces/team-a/statefulsets Bearer t0k3n"]


def test_forbidden_apply_names_verb_resource_and_rbac_hint(
    make_client: Callable[[Handler], KubeClient],
) -> None:
    msg = 'networkpolicies.networking.k8s.io "p" is forbidden: User "bob" cannot patch resource'
    client = make_client(lambda request: status(403, msg, "Forbidden"))
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "team-a"},
        "spec": {"podSelector": {}},
    }
    with pytest.raises(
        ClusterError,
        match="forbidden: cannot patch networkpolicies.networking.k8s.io in namespace team-a",
    ) as err:
        client.apply(obj)
    assert "paude setup --print-rbac --namespace team-a" in (err.value.hint or "")


def test_missing_api_group_means_no_egress_firewall(
    make_client: Callable[[Handler], KubeClient],
) -> None:
    client = make_client(lambda request: httpx2.Response(404, text="404 page not found"))
    assert client.has_kind("k8s.ovn.org/v1", "EgressFirewall") is False
    assert client.get("v1", "Secret", "nope") is None


def test_discovery_tells_whether_an_api_group_is_served(
    make_client: Callable[[Handler], KubeClient],
) -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.method} {request.url.path} {request.headers['authorization']}")
        if request.url.path == "/apis/security.openshift.io/v1":
            return httpx2.Response(200, json={"kind": "APIResourceList", "resources": []})
        return httpx2.Response(404, text="404 page not found")

    client = make_client(handler)
    assert client.has_kind("security.openshift.io/v1") is True
    assert client.has_kind("k8s.ovn.org/v1") is False
    assert seen == ["GET /apis/security.openshift.io/v1 Bearer t0k3n",
                    "GET /apis/k8s.ovn.org/v1 Bearer t0k3n"]  # fmt: skip


def test_unreachable_cluster_is_named(make_client: Callable[[Handler], KubeClient]) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    with pytest.raises(ClusterError, match=r"cannot reach the cluster at https://cluster.invalid"):
        make_client(refuse).list_objects("v1", "Pod", {})


def test_apply_is_server_side_with_the_paude_field_manager(
    make_client: Callable[[Handler], KubeClient],
) -> None:
    calls: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(200, content=request.content)

    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "namespace": "team-a"}, "data": {"k": "v"}}  # fmt: skip
    assert make_client(handler).apply(obj)["data"] == {"k": "v"}
    (request,) = calls
    assert request.method == "PATCH"
    assert request.headers["content-type"] == "application/apply-patch+yaml"
    assert request.url.params["fieldManager"] == "paude" and request.url.params["force"] == "true"
    assert json.loads(request.content)["data"] == {"k": "v"}
