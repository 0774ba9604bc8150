"""Push the real agent image to a real registry that requires a password.

The registry (Debian's docker-registry with htpasswd, tests/registry.py) runs
on loopback for this module only; its access log is the evidence of what was
uploaded. The images are the ones podman sessions use (same builder).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from paude.backends.base import NullReporter
from paude.container import ImageSpec, build_image_tag
from paude.errors import RegistryError
from paude.images.publish import PublishedImage, publish_images
from paude.images.refs import RegistryLogin, RegistryTarget
from paude.runner import SystemRunner
from registry import LocalRegistry, manifest_puts, uploads

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUNNER = SystemRunner()


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A password-protected registry on loopback, empty for each test (the first
    push must find nothing there, in whatever order the tests run)."""
    reg = LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


def target_for(reg: LocalRegistry, *, password: str | None = None) -> RegistryTarget:
    """The registry as paude sees it: plain HTTP on loopback, htpasswd login."""
    prefix = f"{reg.address}/paude-t"
    return RegistryTarget(
        push_prefix=prefix,
        pull_prefix=prefix,
        tls_verify=False,
        login=RegistryLogin(reg.username, password or reg.password),
        login_hint=f"Log in: podman login {reg.address}",
    )


def agent_spec(setup_command: str | None = None) -> ImageSpec:
    """The agent image of the podman tests (host CA trusted), optionally with a setup step."""
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else None
    return ImageSpec(kind="agent", ca_bundle=ca, setup_command=setup_command)


def publish(reg: LocalRegistry, spec: ImageSpec) -> PublishedImage:
    (image,) = publish_images(RUNNER, [spec], target_for(reg), reporter=NullReporter())
    return image


def remote_manifest(reg: LocalRegistry, ref: str) -> dict[str, object]:
    """The manifest the registry serves for ``ref`` (read with the test's own skopeo)."""
    with tempfile.TemporaryDirectory() as work:
        auth = Path(work) / "auth.json"
        pair = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
        auth.write_text(json.dumps({"auths": {reg.address: {"auth": pair}}}))
        out = RUNNER.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile", str(auth),
             f"docker://{ref}"],
            timeout=60,
        )  # fmt: skip
    return dict(json.loads(out.stdout))


def layer_digests(manifest: dict[str, object]) -> set[str]:
    layers = manifest["layers"]
    assert isinstance(layers, list)
    return {str(layer["digest"]) for layer in layers}


def test_first_push_uploads_and_a_second_is_one_manifest_check(registry: LocalRegistry) -> None:
    spec = agent_spec()
    mark = registry.mark()
    first = publish(registry, spec)
    assert first.pushed is True
    assert first.local_tag == build_image_tag(spec)
    assert uploads(registry.since(mark)), "the first push uploaded no blob"
    assert len(manifest_puts(registry.since(mark))) == 1
    assert "@sha256:" in first.pull_ref and first.pull_ref.startswith(f"{registry.address}/")
    # The digest pods get is the one the registry serves for the content-hash tag.
    served = remote_manifest(registry, first.push_ref)
    by_digest = remote_manifest(registry, first.pull_ref)
    assert served == by_digest

    mark = registry.mark()
    second = publish(registry, spec)
    assert second.pushed is False
    assert second.pull_ref == first.pull_ref
    seen = registry.since(mark)
    assert uploads(seen) == [] and manifest_puts(seen) == []
    manifest_gets = [r for r in seen if "/manifests/" in r.path]
    assert len(manifest_gets) == 1, seen
    assert {r.path for r in seen} <= {"/v2/", manifest_gets[0].path}


def test_a_changed_setup_command_pushes_only_the_changed_layers(registry: LocalRegistry) -> None:
    base = publish(registry, agent_spec())
    before = layer_digests(remote_manifest(registry, base.pull_ref))
    mark = registry.mark()
    changed = publish(registry, agent_spec(f"echo {secrets.token_hex(4)} > /etc/paude-setup-test"))
    assert changed.pushed is True
    after = layer_digests(remote_manifest(registry, changed.pull_ref))
    new_layers = after - before
    assert new_layers and before & after, "the changed image shares no layer with the first"
    assert len(new_layers) < len(after) == changed.layers
    # Every blob that reached the registry is a new layer or the image config.
    put_digests = {
        r.path.split("digest=")[1].split("&")[0].replace("%3A", ":")
        for r in uploads(registry.since(mark))
        if r.method == "PUT"
    }
    assert new_layers <= put_digests
    assert len(put_digests - new_layers) == 1  # the config blob
    assert not put_digests & (before & after)


def leftover_auth_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("paude-auth-*"))


def test_a_wrong_password_is_one_clear_line(registry: LocalRegistry) -> None:
    before = leftover_auth_dirs()
    target = target_for(registry, password="wrong-password")
    with pytest.raises(RegistryError) as info:
        publish_images(RUNNER, [agent_spec()], target, reporter=NullReporter())
    err = info.value
    assert err.message.startswith(f"the registry {registry.address} refused the login:")
    assert "\n" not in err.message
    assert err.hint == f"Log in: podman login {registry.address}"
    assert leftover_auth_dirs() == before


def test_a_registry_that_is_down_is_one_clear_line(tmp_path: Path) -> None:
    down = LocalRegistry(tmp_path / "down").start()
    down.stop()
    with pytest.raises(RegistryError) as info:
        publish_images(RUNNER, [agent_spec()], target_for(down), reporter=NullReporter())
    err = info.value
    assert err.message.startswith(f"cannot reach the registry {down.address}:")
    assert "connection refused" in err.message and "\n" not in err.message
    assert err.hint is not None and "backend.registry" in err.hint


def test_a_registry_out_of_storage_is_one_clear_line(tmp_path: Path) -> None:
    """The registry's storage is an 8 MB tmpfs: the proxy image's layers do not fit."""
    data = tmp_path / "full" / "data"
    data.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(data)], check=True,
                   timeout=60)  # fmt: skip
    try:
        full = LocalRegistry(tmp_path / "full").start()
        try:
            with pytest.raises(RegistryError) as info:
                publish_images(RUNNER, [ImageSpec(kind="proxy")], target_for(full),
                               reporter=NullReporter())  # fmt: skip
        finally:
            full.stop()
    finally:
        subprocess.run(["umount", str(data)], check=True, timeout=60)
    err = info.value
    assert err.message.startswith(f"the registry {full.address} failed to store the image:")
    assert "500 Internal Server Error" in err.message and "\n" not in err.message
    assert err.hint is not None and "free storage" in err.hint


def test_manifests_show_the_digests_the_registry_holds(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paude.backends.base import SessionSpec
    from paude.backends.openshift.cluster import pin_images
    from paude.backends.openshift.objects import cluster_settings
    from paude.config.models import BackendConfig, PaudeConfig

    # backend.registry means the user's own login (podman login writes this file).
    auth = tmp_path / "auth.json"
    pair = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    auth.write_text(json.dumps({"auths": {registry.address: {"auth": pair}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    prefix = f"{registry.address}/manifests-{secrets.token_hex(3)}"
    config = PaudeConfig(backend=BackendConfig(type="openshift", registry=prefix,
                                               registry_tls_verify=False))  # fmt: skip
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else None
    spec = SessionSpec(name="m", workspace=tmp_path, allowed_domains=("example.com",),
                       allow_network=True, ca_bundle=ca)  # fmt: skip
    settings = cluster_settings(config.backend, "team-a")
    mark = registry.mark()
    before = pin_images(settings, config, spec, NullReporter())
    assert before.image == f"{prefix}/{build_image_tag(agent_spec()).split('/', 1)[1]}"

    target = RegistryTarget(push_prefix=prefix, pull_prefix=prefix, tls_verify=False)
    (pushed,) = publish_images(RUNNER, [agent_spec()], target, reporter=NullReporter())
    after = pin_images(settings, config, spec, NullReporter())
    assert after.image == pushed.pull_ref and "@sha256:" in after.image
    assert [r for r in uploads(registry.since(mark))], "publish used the user's login"
