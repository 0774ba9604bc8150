"""Where a cluster session's images go: config, OpenShift's route and advertised registry."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from test_openshift_backend_offline import FakeKube

from fakes import RecordingRunner, reply
from paude.backends.base import NullReporter, SessionSpec
from paude.backends.openshift.backend import OpenShiftBackend
from paude.backends.openshift.imageregistry import (
    INTERNAL_REGISTRY,
    build_configured_target,
    build_openshift_target,
    parse_advertised,
    parse_route_host,
)
from paude.backends.openshift.manifests import build_session_objects
from paude.backends.openshift.objects import cluster_settings
from paude.backends.openshift.status import image_error
from paude.config.models import BackendConfig, PaudeConfig, SyncConfig
from paude.errors import ConfigError, ImagePullError

SPEC = SessionSpec(name="s1", workspace=Path("/w"), allowed_domains=("example.com",))


def test_configured_registry_pushes_with_the_users_login() -> None:
    target = build_configured_target(
        BackendConfig(registry="push.example:5000/team/", pull_registry="pull.internal/team",
                      registry_tls_verify=False)  # fmt: skip
    )
    assert target is not None
    assert target.push_prefix == "push.example:5000/team"
    assert target.pull_prefix == "pull.internal/team"
    assert target.login is None and target.tls_verify is False
    assert target.login_hint == "Log in: podman login push.example:5000"


def test_no_registry_configured_means_none() -> None:
    assert build_configured_target(BackendConfig()) is None


def test_a_bad_registry_address_is_refused_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="invalid registry address"):
        build_configured_target(BackendConfig(registry="https://push.example"))


def test_route_host_and_advertised_registry_are_read_from_openshift_objects() -> None:
    host = "default-route-openshift-image-registry.apps.c"
    assert parse_route_host({"spec": {"host": host}}) == host
    assert parse_route_host(None) is None
    streams: list[dict[str, Any]] = [
        {"status": {}},
        {"status": {"dockerImageRepository": f"{INTERNAL_REGISTRY}/openshift/cli",
                    "publicDockerImageRepository": "reg.apps.c/openshift/cli"}},
    ]  # fmt: skip
    assert parse_advertised(streams) == ("reg.apps.c", INTERNAL_REGISTRY)
    assert parse_advertised([]) == (None, None)


def test_openshift_target_pushes_outside_and_pulls_through_the_service() -> None:
    target = build_openshift_target("team-a", external="reg.apps.c", internal=None, token="t~1")
    assert target.push_prefix == "reg.apps.c/team-a"
    assert target.pull_prefix == f"{INTERNAL_REGISTRY}/team-a"
    assert target.login is not None and target.login.password == "t~1"
    assert "oc login" in target.login_hint
    assert "imagestreams/layers" in target.push_permission


def test_pods_name_the_pull_secret() -> None:
    settings = cluster_settings(BackendConfig(pull_secret="regcred"), "team-a")
    pods = [
        o["spec"]["template"]["spec"]
        for o in build_session_objects(SPEC, settings)
        if o["kind"] in ("StatefulSet", "Deployment")
    ]
    assert len(pods) == 2
    assert all(p["imagePullSecrets"] == [{"name": "regcred"}] for p in pods)


def test_no_pull_secret_by_default() -> None:
    objs = build_session_objects(SPEC, cluster_settings(BackendConfig(), "team-a"))
    assert all("imagePullSecrets" not in str(o) for o in objs)


def test_start_with_a_registry_runs_both_images_by_digest_and_pushes_nothing_present() -> None:
    manifest = '{"schemaVersion":2}'
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    runner = RecordingRunner(reply(("skopeo", "inspect"), stdout=manifest))
    config = PaudeConfig(backend=BackendConfig(type="openshift", registry="push.example/team",
                                               pull_registry="pull.internal/team"),
                         sync=SyncConfig(enabled=False))  # fmt: skip
    kube = FakeKube()
    backend = OpenShiftBackend(config, runner=runner, reporter=NullReporter(), client=kube)  # type: ignore[arg-type]
    backend.start_session(SPEC)
    sts = kube.objects[("StatefulSet", "paude-s1")]
    proxy = next(o for (k, _), o in kube.objects.items() if k == "Deployment")
    agent_image = sts["spec"]["template"]["spec"]["containers"][0]["image"]
    proxy_image = proxy["spec"]["template"]["spec"]["containers"][0]["image"]
    assert agent_image == f"pull.internal/team/paude-agent@{digest}"
    assert proxy_image == f"pull.internal/team/paude-proxy@{digest}"
    assert len(runner.commands("skopeo", "inspect")) == 2
    assert runner.commands("podman") == []


class PullFails(FakeKube):
    """The node reports ImagePullBackOff for the agent pod."""

    def wait_pod_ready(self, name: str | None = None, **kw: Any) -> dict[str, Any]:
        raise image_error("pull.internal/team/paude-agent@sha256:ab", "pull access denied")


def pull_failing_backend(kube: FakeKube) -> OpenShiftBackend:
    config = PaudeConfig(backend=BackendConfig(type="openshift", image="r.example/paude:1"),
                         sync=SyncConfig(enabled=False))  # fmt: skip
    return OpenShiftBackend(config, runner=RecordingRunner(), reporter=NullReporter(),
                            client=kube)  # type: ignore[arg-type]  # fmt: skip


def test_a_node_that_cannot_pull_is_one_line_and_leaves_nothing_behind() -> None:
    kube = PullFails()
    with pytest.raises(ImagePullError, match="node cannot pull the image") as info:
        pull_failing_backend(kube).start_session(SPEC)
    assert "\n" not in info.value.message
    assert kube.applied, "nothing was applied before the wait"
    assert kube.objects == {}


def test_a_pull_failure_keeps_a_workspace_volume_that_held_work() -> None:
    kube = PullFails()
    claim = {"kind": "PersistentVolumeClaim", "metadata": {"name": "paude-s1-workspace"}}
    kube.objects[("PersistentVolumeClaim", "paude-s1-workspace")] = claim
    with pytest.raises(ImagePullError):
        pull_failing_backend(kube).start_session(SPEC)
    assert list(kube.objects) == [("PersistentVolumeClaim", "paude-s1-workspace")]


def test_print_rbac_grants_the_push_and_the_detection() -> None:
    from paude.backends.openshift.rbac import build_role

    rules = build_role("team-a")["rules"]
    layers = [r for r in rules if r["resources"] == ["imagestreams/layers"]]
    streams = [r for r in rules if r["resources"] == ["imagestreams"]]
    assert layers and set(layers[0]["verbs"]) == {"get", "update"}
    assert streams and "list" in streams[0]["verbs"]
    assert all(r["apiGroups"] == ["image.openshift.io"] for r in layers + streams)


def test_an_export_without_a_kubeconfig_stays_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paude.backends.openshift.cluster import build_export
    from paude.backends.openshift.objects import DEFAULT_IMAGE, DEFAULT_PROXY_IMAGE

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    config = PaudeConfig(backend=BackendConfig(type="openshift", namespace="team-a"))
    reporter = NullReporter()
    objs = build_export(config, SPEC, egress_firewall=False, admin=False, reporter=reporter)
    images = {o["kind"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
              for o in objs if o["kind"] in ("StatefulSet", "Deployment")}  # fmt: skip
    assert images == {"StatefulSet": DEFAULT_IMAGE, "Deployment": DEFAULT_PROXY_IMAGE}
    assert reporter.messages == []
