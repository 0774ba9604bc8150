"""The OpenShift image path on the test cluster: registry detection, token login, push, digests.

What real OpenShift has is served here: the Route and ImageStream APIs as
CRDs (installed for this module only, then removed, so the other tests keep
seeing plain Kubernetes), the registry's route in ``openshift-image-registry``
and the image streams of the shared ``openshift`` namespace. The registry is
Debian's docker-registry with token auth (tests/registry_token.py), whose
token server asks the API server who the token belongs to (TokenReview) and
whether they may push (SubjectAccessReview on ``imagestreams/layers``): the
checks OpenShift's registry makes. paude runs as the user bound only to its
documented Role. kwok runs no containers, so nothing is pulled here.
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from paude.backends.base import NullReporter, SessionSpec
from paude.backends.openshift.backend import OpenShiftBackend
from paude.backends.openshift.client import KubeClient
from paude.backends.openshift.cluster import build_export
from paude.backends.openshift.imageregistry import (
    INTERNAL_REGISTRY,
    REGISTRY_NAMESPACE,
    SHARED_IMAGES_NAMESPACE,
    resolve_target,
)
from paude.backends.openshift.images import build_image_specs
from paude.backends.openshift.rbac import ROLE_NAME, build_role
from paude.config.models import Amounts, BackendConfig, PaudeConfig, Resources, SyncConfig
from paude.container.image import build_image_tag
from paude.errors import RegistryError
from paude.images.refs import manifest_digest
from paude.runner import SystemRunner
from registry import LocalRegistry, manifest_puts, uploads
from registry_token import TokenServer, token_auth_config

if TYPE_CHECKING:
    from conftest import Cluster

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SMALL = Resources(requests=Amounts(cpu="100m", memory="128Mi"), limits=Amounts(memory="256Mi"))
TEST_LABELS = {"paude.io/test": "1"}
SESSION_KINDS = "statefulsets,pods,secrets,configmaps,services,networkpolicies,deployments,pvc"


def _crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": TEST_LABELS},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            # No status subresource: the test writes status as OpenShift would.
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            }}],
        },
    }  # fmt: skip


CRDS = (
    _crd("route.openshift.io", "Route", "routes"),
    _crd("image.openshift.io", "ImageStream", "imagestreams"),
)


@pytest.fixture(scope="module")
def openshift_apis(cluster: Cluster) -> Iterator[None]:
    """Serve OpenShift's Route and ImageStream APIs (and their namespaces) for this module."""
    namespaces = (REGISTRY_NAMESPACE, SHARED_IMAGES_NAMESPACE)
    cluster.apply(
        *CRDS,
        *({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": n, "labels": TEST_LABELS}} for n in namespaces),
    )  # fmt: skip
    names = [c["metadata"]["name"] for c in CRDS]
    cluster.run("wait", "--for=condition=Established", *(f"crd/{n}" for n in names))
    try:
        yield
    finally:
        cluster.run("delete", "crd", *names, "--wait=false")
        cluster.run("delete", "namespace", *namespaces, "--wait=false")


@pytest.fixture(scope="module")
def token_registry(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalRegistry, TokenServer]]:
    """A registry whose logins and pushes the API server decides, like OpenShift's."""

    def review(obj: dict[str, Any]) -> dict[str, Any]:
        out = cluster.run("create", "-f", "-", "-o", "json", input=json.dumps(obj), check=False)
        return dict(json.loads(out.stdout)["status"]) if out.returncode == 0 else {}

    def authenticate(token: str) -> str | None:
        status = review({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                         "spec": {"token": token}})  # fmt: skip
        return str(status["user"]["username"]) if status.get("authenticated") else None

    def authorize(user: str, verb: str, namespace: str) -> bool:
        attributes = {"namespace": namespace, "verb": verb, "group": "image.openshift.io",
                      "resource": "imagestreams", "subresource": "layers"}  # fmt: skip
        status = review({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                         "spec": {"user": user, "resourceAttributes": attributes}})  # fmt: skip
        return bool(status.get("allowed"))

    root = tmp_path_factory.mktemp("token-registry")
    server = TokenServer(root / "token", authenticate, authorize).start()
    registry = LocalRegistry(root / "registry", auth=token_auth_config(server)).start()
    try:
        yield registry, server
    finally:
        registry.stop()
        server.stop()


@pytest.fixture
def as_limited(
    limited_kubeconfig: Path, openshift_apis: None, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Make lightkube use the limited user's kubeconfig."""
    monkeypatch.setenv("KUBECONFIG", str(limited_kubeconfig))
    return limited_kubeconfig


def expose_route(cluster: Cluster, host: str, reader_namespace: str) -> Iterator[None]:
    """The registry's default route, readable by the limited user of ``reader_namespace``."""
    subject = {"kind": "ServiceAccount", "name": "paude-user", "namespace": reader_namespace}
    name = f"route-reader-{reader_namespace}"
    meta = {"name": name, "namespace": REGISTRY_NAMESPACE, "labels": TEST_LABELS}
    cluster.apply(
        {"apiVersion": "route.openshift.io/v1", "kind": "Route",
         "metadata": {"name": "default-route", "namespace": REGISTRY_NAMESPACE},
         "spec": {"host": host, "to": {"kind": "Service", "name": "image-registry"}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": [{"apiGroups": ["route.openshift.io"], "resources": ["routes"],
                    "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [subject]},
    )  # fmt: skip
    try:
        yield
    finally:
        cluster.run("delete", "route", "default-route", "-n", REGISTRY_NAMESPACE, check=False)
        cluster.run("delete", "role,rolebinding", name, "-n", REGISTRY_NAMESPACE, check=False)


@pytest.fixture
def route(
    cluster: Cluster, namespace: str, token_registry: tuple[LocalRegistry, TokenServer],
    as_limited: Path,
) -> Iterator[LocalRegistry]:  # fmt: skip
    """The token registry, exposed as OpenShift's default route."""
    registry, _ = token_registry
    for _ in expose_route(cluster, registry.address, namespace):
        yield registry


def shared_stream(cluster: Cluster, status: dict[str, str]) -> Iterator[None]:
    """An image stream in ``openshift`` that every authenticated user may read, as there."""
    meta = {"name": "paude-test-readers", "namespace": SHARED_IMAGES_NAMESPACE}
    cluster.apply(
        {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
         "metadata": {"name": "cli", "namespace": SHARED_IMAGES_NAMESPACE}, "status": status},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": [{"apiGroups": ["image.openshift.io"], "resources": ["imagestreams"],
                    "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": meta["name"]},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                       "name": "system:authenticated"}]},
    )  # fmt: skip
    try:
        yield
    finally:
        cluster.run("delete", "imagestream", "cli", "-n", SHARED_IMAGES_NAMESPACE, check=False)
        cluster.run("delete", "role,rolebinding", meta["name"], "-n", SHARED_IMAGES_NAMESPACE,
                    check=False)  # fmt: skip


def make_backend(namespace: str) -> tuple[OpenShiftBackend, NullReporter]:
    config = PaudeConfig(backend=BackendConfig(
        type="openshift", namespace=namespace, resources=SMALL, registry_tls_verify=False,
    ), sync=SyncConfig(enabled=False))  # fmt: skip
    reporter = NullReporter()
    return OpenShiftBackend(config, runner=SystemRunner(), reporter=reporter), reporter


def session_spec(name: str) -> SessionSpec:
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else None
    return SessionSpec(name=name, workspace=Path("/src") / name,
                       allowed_domains=("api.anthropic.com",), ca_bundle=ca)  # fmt: skip


def images_of(cluster: Cluster, namespace: str) -> dict[str, str]:
    """The image of every paude workload in ``namespace``: kind -> image."""
    out = cluster.run("get", "statefulsets,deployments", "-n", namespace,
                      "-l", "app.kubernetes.io/managed-by=paude", "-o", "json").stdout  # fmt: skip
    return {
        o["kind"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in json.loads(out)["items"]
    }


def served_digest(registry: LocalRegistry, server: TokenServer, repo_tag: str) -> str:
    """The digest the registry serves for ``ns/name:tag``, read with a token of the test's own."""
    repo, _, tag = repo_tag.rpartition(":")
    token = server.issue("test", [{"type": "repository", "name": repo, "actions": ["pull"]}])
    request = urllib.request.Request(
        f"http://{registry.address}/v2/{repo}/manifests/{tag}",
        headers={"Authorization": f"Bearer {token}",
                 "Accept": "application/vnd.oci.image.manifest.v1+json,"
                           "application/vnd.docker.distribution.manifest.v2+json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return manifest_digest(response.read())


def labelled(cluster: Cluster, namespace: str) -> list[str]:
    out = cluster.run("get", SESSION_KINDS, "-n", namespace,
                      "-l", "app.kubernetes.io/managed-by=paude", "-o", "name").stdout  # fmt: skip
    return out.split()


def test_start_pushes_as_the_user_through_the_route_and_runs_by_digest(
    cluster: Cluster, namespace: str, route: LocalRegistry,
    token_registry: tuple[LocalRegistry, TokenServer],
) -> None:  # fmt: skip
    registry, server = token_registry
    before = set(Path(tempfile.gettempdir()).glob("paude-auth-*"))
    backend, reporter = make_backend(namespace)
    mark = registry.mark()
    backend.start_session(session_spec("img"))

    images = images_of(cluster, namespace)
    # Both pods run the digest the registry serves for their content-hash tag.
    specs = build_image_specs(backend.config, session_spec("img"))
    for kind, image_spec in zip(("StatefulSet", "Deployment"), specs, strict=True):
        name_tag = build_image_tag(image_spec).split("/", 1)[1]  # paude-agent:<hash>
        digest = served_digest(registry, server, f"{namespace}/{name_tag}")
        assert images[kind] == f"{INTERNAL_REGISTRY}/{namespace}/{name_tag.split(':')[0]}@{digest}"
    first = registry.since(mark)
    assert uploads(first) and len(manifest_puts(first)) == 2
    # Pushed as the limited user, into the session namespace, with its token.
    user = f"system:serviceaccount:{namespace}:paude-user"
    pushed = {repo for who, repo, actions in server.grants if who == user and "push" in actions}
    assert pushed == {f"{namespace}/paude-agent", f"{namespace}/paude-proxy"}
    assert len([m for m in reporter.messages if m.startswith("Pushed ")]) == 2

    mark = registry.mark()
    again, again_reporter = make_backend(namespace)
    again.start_session(session_spec("img"))
    second = registry.since(mark)
    assert uploads(second) == [] and manifest_puts(second) == []
    assert len([r for r in second if "/manifests/" in r.path]) == 2
    assert images_of(cluster, namespace) == images
    assert not [m for m in again_reporter.messages if m.startswith(("Building", "Pushing"))]

    # paude manifests: the same digests, found through the same route, nothing pushed.
    mark = registry.mark()
    exported = build_export(again.config, session_spec("img"), egress_firewall=False,
                            admin=False, reporter=NullReporter())  # fmt: skip
    shown = {o["kind"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
             for o in exported if o["kind"] in ("StatefulSet", "Deployment")}  # fmt: skip
    assert shown == images
    assert uploads(registry.since(mark)) == [] and manifest_puts(registry.since(mark)) == []
    assert set(Path(tempfile.gettempdir()).glob("paude-auth-*")) == before


def test_no_permission_to_push_is_one_line_naming_the_verb_and_nothing_is_created(
    cluster: Cluster, namespace: str, route: LocalRegistry,
) -> None:  # fmt: skip
    role = build_role(namespace)  # paude's Role, but pull only: no "update" on the layers
    for rule in role["rules"]:
        if rule["resources"] == ["imagestreams/layers"]:
            rule["verbs"] = ["get"]
    cluster.apply(role)
    cluster.wait_for(
        lambda: cluster.run("auth", "can-i", "update", "imagestreams.image.openshift.io/layers",
                            "-n", namespace, "--as",
                            f"system:serviceaccount:{namespace}:paude-user",
                            check=False).stdout.strip() == "no",
        timeout=30, what="the Role without imagestreams/layers",
    )  # fmt: skip
    backend, _ = make_backend(namespace)
    with pytest.raises(RegistryError) as info:
        backend.start_session(session_spec("denied"))
    err = info.value
    assert err.message.startswith(f"no permission to push to {route.address}/{namespace}")
    assert "\n" not in err.message
    assert err.hint is not None
    assert "'update' on imagestreams/layers" in err.hint and "paude setup --print-rbac" in err.hint
    assert labelled(cluster, namespace) == []
    assert role["metadata"]["name"] == ROLE_NAME


def test_the_registry_is_found_in_image_streams_when_the_route_is_not_readable(
    cluster: Cluster, namespace: str, as_limited: Path,
) -> None:  # fmt: skip
    status = {
        "dockerImageRepository": "image-registry.openshift-image-registry.svc:5000/openshift/cli",
        "publicDockerImageRepository": "registry.apps.example.test/openshift/cli",
    }
    for _ in shared_stream(cluster, status):
        api = KubeClient(context=None, namespace=namespace)
        warnings: list[str] = []
        target = resolve_target(api, BackendConfig(type="openshift"), warn=warnings.append)
        assert target is not None and warnings == []
        assert target.push_prefix == f"registry.apps.example.test/{namespace}"
        assert target.pull_prefix == f"{INTERNAL_REGISTRY}/{namespace}"
        assert target.login is not None
        assert target.login.password == api.bearer_token() and target.login.password


def test_an_unexposed_registry_is_one_line_with_the_fix_and_nothing_is_created(
    cluster: Cluster, namespace: str, as_limited: Path,
) -> None:  # fmt: skip
    status = {"dockerImageRepository": f"{INTERNAL_REGISTRY}/openshift/cli"}
    for _ in shared_stream(cluster, status):
        backend, _ = make_backend(namespace)
        with pytest.raises(RegistryError, match="no external address") as info:
            backend.start_session(session_spec("hidden"))
        assert info.value.hint is not None and "defaultRoute" in info.value.hint
        assert labelled(cluster, namespace) == []


def test_without_an_integrated_registry_openshift_is_like_any_kubernetes(
    namespace: str, as_limited: Path,
) -> None:  # fmt: skip
    api = KubeClient(context=None, namespace=namespace)
    assert resolve_target(api, BackendConfig(type="openshift"), warn=pytest.fail) is None
