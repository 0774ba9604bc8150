"""Pure parts of getting images to a registry: refs, auth files, argv, failure lines."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from fakes import RecordingRunner, reply
from paude.backends.base import NullReporter
from paude.container.image import ImageSpec, build_image_tag
from paude.errors import ConfigError, RegistryError
from paude.images.argv import build_inspect_argv, build_push_argv
from paude.images.auth import render_auth_file, temporary_auth_file
from paude.images.failures import classify_failure, is_missing
from paude.images.publish import (
    describe_image,
    parse_image_size,
    parse_push_layers,
    publish_images,
    render_size,
)
from paude.images.refs import (
    RegistryLogin,
    RegistryTarget,
    build_pull_ref,
    build_push_ref,
    manifest_digest,
)

TAG = "localhost/paude-agent:0123456789ab"
DIGEST = "sha256:" + "a" * 64
TARGET = RegistryTarget(
    push_prefix="registry.example.com:5000/team",
    pull_prefix="registry.internal:5000/team",
    login=RegistryLogin("paude", "s3cret-token"),
    login_hint="Log in again: oc login",
)


def test_push_ref_keeps_name_and_content_hash_tag() -> None:
    assert build_push_ref(TARGET, TAG) == "registry.example.com:5000/team/paude-agent:0123456789ab"


def test_pull_ref_is_by_digest_never_by_tag() -> None:
    ref = build_pull_ref(TARGET, TAG, DIGEST)
    assert ref == f"registry.internal:5000/team/paude-agent@{DIGEST}"
    assert ":0123456789ab" not in ref
    with pytest.raises(ValueError, match="not a sha256 digest"):
        build_pull_ref(TARGET, TAG, "latest")


def test_refs_refuse_a_non_paude_tag() -> None:
    with pytest.raises(ValueError, match="not a paude image tag"):
        build_push_ref(TARGET, "quay.io/someone/else:1")


@pytest.mark.parametrize(
    "prefix",
    ["https://registry.example.com", "registry.example.com/team:tag", "reg istry", "", "-x/y"],
)
def test_registry_address_is_validated(prefix: str) -> None:
    with pytest.raises(ConfigError, match="invalid registry address"):
        RegistryTarget(push_prefix=prefix, pull_prefix="ok.example")


def test_manifest_digest_is_sha256_of_exact_bytes() -> None:
    raw = b'{"schemaVersion":2}'
    assert manifest_digest(raw) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_auth_file_holds_the_login_for_the_push_host_only() -> None:
    doc = json.loads(render_auth_file(TARGET))
    assert list(doc["auths"]) == ["registry.example.com:5000"]
    auth = base64.b64decode(doc["auths"]["registry.example.com:5000"]["auth"]).decode()
    assert auth == "paude:s3cret-token"


def test_login_password_is_not_in_repr() -> None:
    assert "s3cret-token" not in repr(TARGET)


def test_temporary_auth_file_is_private_and_removed() -> None:
    with temporary_auth_file(TARGET) as path:
        assert path is not None
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert "auths" in Path(path).read_text()
    assert not os.path.exists(path)
    assert not os.path.exists(os.path.dirname(path))


def test_temporary_auth_file_is_removed_on_failure() -> None:
    with pytest.raises(RuntimeError), temporary_auth_file(TARGET) as path:
        raise RuntimeError("push failed")
    assert path is not None and not os.path.exists(path)


def test_no_login_means_the_users_own_auth() -> None:
    target = RegistryTarget(push_prefix="reg.example", pull_prefix="reg.example")
    with temporary_auth_file(target) as path:
        assert path is None
    argv = build_inspect_argv(target, "reg.example/paude-agent:x", None)
    assert "--authfile" not in argv


def test_inspect_is_one_raw_manifest_request_without_secrets() -> None:
    ref = "registry.example.com:5000/team/paude-agent:a"
    argv = build_inspect_argv(TARGET, ref, "/tmp/a.json")
    assert argv[:3] == ["skopeo", "inspect", "--raw"]
    assert "--retry-times=0" in argv
    assert argv[-1] == "docker://registry.example.com:5000/team/paude-agent:a"
    assert argv[argv.index("--authfile") + 1] == "/tmp/a.json"
    assert not any("s3cret" in a for a in argv)


def test_a_registry_ca_directory_reaches_both_tools() -> None:
    target = RegistryTarget(push_prefix="r.example", pull_prefix="r.example", cert_dir="/ca")
    inspect = build_inspect_argv(target, "r.example/paude-agent:x", None)
    push = build_push_argv(target, TAG, "r.example/paude-agent:x", authfile=None, digestfile="/d")
    for argv in (inspect, push):
        assert argv[argv.index("--cert-dir") + 1] == "/ca"


def test_push_writes_the_digest_and_honours_tls_setting() -> None:
    target = RegistryTarget(push_prefix="127.0.0.1:5000", pull_prefix="127.0.0.1:5000",
                            tls_verify=False)  # fmt: skip
    argv = build_push_argv(target, TAG, "127.0.0.1:5000/paude-agent:x", authfile=None,
                           digestfile="/d")  # fmt: skip
    assert argv[:2] == ["podman", "push"]
    assert "--tls-verify=false" in argv
    assert argv[argv.index("--digestfile") + 1] == "/d"
    assert argv[-2:] == [TAG, "docker://127.0.0.1:5000/paude-agent:x"]


# stderr lines as skopeo 1.9 / podman 4.3 print them (seen in tests/podman/test_push.py).
_LOGRUS = (
    'time="2026-12-03T08:06:33Z" level=fatal'
    ' msg="Error parsing image name \\"docker://h/x:1\\": {}"'
)


@pytest.mark.parametrize(
    ("stderr", "message", "hint"),
    [
        (
            _LOGRUS.format("reading manifest 1 in h/x: unauthorized: authentication required"),
            "the registry registry.example.com:5000 refused the login: reading manifest 1 in h/x:"
            " unauthorized: authentication required",
            "Log in again: oc login",
        ),
        (
            'Error: pinging container registry h: Get "http://h/v2/": dial tcp 127.0.0.1:1:'
            " connect: connection refused",
            "cannot reach the registry registry.example.com:5000: pinging container registry h:"
            ' Get "http://h/v2/": dial tcp 127.0.0.1:1: connect: connection refused',
            "Check backend.registry",
        ),
        (
            "Error: writing blob: denied: requested access to the resource is denied",
            "no permission to push to registry.example.com:5000/team on registry.example.com:5000",
            "Ask the owner",
        ),
        (
            "Error: writing blob: initiating layer upload to /v2/x/p/blobs/uploads/ in h:"
            " received unexpected HTTP status: 500 Internal Server Error",
            "the registry registry.example.com:5000 failed to store the image: writing blob:",
            "free storage",
        ),
        (
            "Error: writing blob: denied: exceeded quota for imagestreams",
            "refused the image: over quota",
            "Remove old paude images",
        ),
        (
            _LOGRUS.format('pinging container registry h: Get \\"https://h/v2/\\": http: server'
                           " gave HTTP response to HTTPS client"),
            "speaks plain HTTP",
            "registry_tls_verify",
        ),
    ],
)
def test_failures_are_one_line_with_the_fix(stderr: str, message: str, hint: str) -> None:
    err = classify_failure(stderr, target=TARGET, action="push")
    assert isinstance(err, RegistryError)
    assert message in err.message
    assert "\n" not in err.message
    assert err.hint is not None and hint in err.hint


def test_manifest_unknown_is_not_a_failure() -> None:
    unknown = "reading manifest x in h/x: manifest unknown: manifest unknown"
    assert is_missing(_LOGRUS.format(unknown))
    assert not is_missing("unauthorized: authentication required")


def test_push_layers_are_counted_from_podman_output() -> None:
    output = (
        "Getting image source signatures\n"
        "Copying blob sha256:aaa\n"
        "Copying blob sha256:bbb\n"
        "Copying config sha256:ddd\n"
        "Writing manifest to image destination\n"
    )
    assert parse_push_layers(output) == 2


def test_publish_checks_once_and_pushes_nothing_when_the_registry_has_it() -> None:
    spec = ImageSpec(kind="proxy")
    manifest = '{"schemaVersion":2,"layers":[]}'
    runner = RecordingRunner(reply(("skopeo", "inspect"), stdout=manifest))
    images = publish_images(runner, [spec], TARGET, reporter=NullReporter())
    assert [c[:2] for c in runner.calls] == [("skopeo", "inspect")]
    (image,) = images
    assert image.pushed is False
    assert image.local_tag == build_image_tag(spec)
    assert image.pull_ref == (
        "registry.internal:5000/team/paude-proxy@" + manifest_digest(manifest.encode())
    )


def test_publish_stops_at_a_refused_login_before_building() -> None:
    runner = RecordingRunner(
        reply(("skopeo", "inspect"), returncode=1, stderr="unauthorized: authentication required")
    )
    with pytest.raises(RegistryError, match="refused the login"):
        publish_images(runner, [ImageSpec(kind="proxy")], TARGET, reporter=NullReporter())
    assert not runner.commands("podman")


def test_the_push_line_names_the_images_layers_and_size() -> None:
    inspect = json.dumps([{"RootFS": {"Layers": ["sha256:a", "sha256:b"]}, "Size": 1_420_000_000}])
    assert parse_image_size(inspect) == (2, 1_420_000_000)
    runner = RecordingRunner(reply(("podman", "image", "inspect"), stdout=inspect))
    assert describe_image(runner, TAG) == (" (2 layers, 1.42 GB)", " (1.42 GB)")
    assert [render_size(n) for n in (291_963_066, 5_300_000, 12_000, 10)] == [
        "292 MB", "5.30 MB", "12 kB", "10 B"]  # fmt: skip
    # podman that cannot tell: the push goes on, without the size.
    assert describe_image(RecordingRunner(reply(("podman",), returncode=125)), TAG) == ("", "")
