"""Configuration loading: precedence, validation messages, devcontainer handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from paude.config import load_config
from paude.config.models import DEFAULT_BASE_IMAGE
from paude.errors import ConfigError
from paude.trust.refuse import HostPathRefusedError


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_defaults_without_files(tmp_path: Path) -> None:
    loaded = load_config(tmp_path, env={"HOME": str(tmp_path)})
    assert loaded.config.backend.type == "podman"
    assert loaded.config.image.base == DEFAULT_BASE_IMAGE
    assert loaded.devcontainer is None
    assert loaded.warnings == ()


def test_precedence_user_project_env_flags(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ws = tmp_path / "ws"
    ws.mkdir()
    write(home / ".config/paude/paude.json",
          {"backend": {"namespace": "user-ns", "context": "user-ctx"},
           "allowed_domains": ["user.example.com"]})
    write(ws / "paude.json", {"backend": {"namespace": "project-ns"},
                              "allowed_domains": ["project.example.com"]})
    env = {"HOME": str(home), "PAUDE_ALLOWED_DOMAINS": "env.example.com"}
    loaded = load_config(ws, env=env, overrides={"backend": {"type": "openshift"},
                                                 "allowed_domains": ["flag.example.com"]})
    cfg = loaded.config
    assert cfg.backend.type == "openshift"
    assert cfg.backend.namespace == "project-ns"
    assert cfg.backend.context == "user-ctx"
    assert cfg.allowed_domains == ("user.example.com", "project.example.com",
                                   "env.example.com", "flag.example.com")


def test_xdg_config_home_wins_over_home(tmp_path: Path) -> None:
    write(tmp_path / "xdg/paude/paude.json", {"image": {"packages": ["jq"]}})
    loaded = load_config(tmp_path, env={"HOME": "/nonexistent", "XDG_CONFIG_HOME":
                                        str(tmp_path / "xdg")})
    assert loaded.config.image.packages == ("jq",)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", r"paude\.json: line 1 column 2: Expecting property name"),
        ({"backend": {"tyep": "podman"}}, r"paude\.json: backend\.tyep: unknown field"),
        ({"allowed_domains": ["*"]},
         r"paude\.json: allowed_domains\.0: '\*' would allow every destination"),
        ({"allowed_domains": ["https://example.com/path"]},
         r"allowed_domains\.0: 'https://example\.com/path' is not a domain"),
        ({"backend": {"type": "docker"}}, r"backend\.type: Input should be 'podman' or"),
        ({"image": {"packages": ["jq; rm -rf /"]}}, r"image\.packages\.0: 'jq; rm -rf /' is not"),
        ({"backend": {"resources": {"limits": {"cpu": "lots"}}}},
         r"backend\.resources\.limits\.cpu: 'lots' is not a resource quantity"),
        ({"backend": {"resources": {"limits": {"memroy": "1Gi"}}}},
         r"backend\.resources\.limits: .*'memroy' is not a resource: use cpu, memory, pids"),
        ({"backend": {"resources": {"limits": {"nvidia.com/gpu": "500m"}}}},
         r"backend\.resources\.limits: .*nvidia\.com/gpu: '500m' is not a whole number"),
        ({"backend": {"resources": {"requests": {"pids": 10}}}},
         r"backend\.resources: .*pids is a limit only"),
        ({"backend": {"timeout": {"idle": "4 hours"}}},
         r"backend\.timeout\.idle: '4 hours' is not a duration"),
        ("[1, 2]", r"the top level must be a JSON object"),
    ],
)
def test_bad_project_file_names_file_and_field(
    tmp_path: Path, content: object, expected: str
) -> None:
    write(tmp_path / "paude.json", content)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(tmp_path, env={"HOME": str(tmp_path / "h")})
    assert info.value.exit_code == 2
    assert str(tmp_path / "paude.json") in info.value.message


def test_bad_flag_is_attributed_to_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"command line: allowed_domains\.0: an allowlist"):
        load_config(tmp_path, env={}, overrides={"allowed_domains": [" "]})


def test_devcontainer_image_and_security_warnings(tmp_path: Path) -> None:
    write(tmp_path / ".devcontainer/devcontainer.json", """{
        // comments are allowed in devcontainer.json
        "image": "registry.example.com/team/dev:1",
        "privileged": true,
        "capAdd": ["SYS_ADMIN"],
        "mounts": ["source=/,target=/host,type=bind"],
        "runArgs": ["--network=host"],
    }""")
    loaded = load_config(tmp_path, env={})
    assert loaded.devcontainer is not None
    assert loaded.devcontainer.image == "registry.example.com/team/dev:1"
    for key in ("privileged", "capAdd", "mounts", "runArgs"):
        assert any(f"'{key}' is ignored" in w for w in loaded.warnings), key


def test_devcontainer_dockerfile_is_read_relative_to_the_file(tmp_path: Path) -> None:
    write(tmp_path / ".devcontainer.json", {"build": {"dockerfile": "Dockerfile.dev"}})
    write(tmp_path / "Dockerfile.dev", "FROM docker.io/library/debian:bookworm-slim\n")
    loaded = load_config(tmp_path, env={})
    assert loaded.devcontainer is not None
    assert loaded.devcontainer.dockerfile == "FROM docker.io/library/debian:bookworm-slim\n"


def test_devcontainer_missing_dockerfile_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path / ".devcontainer.json", {"build": {"dockerfile": "nope"}})
    with pytest.raises(ConfigError, match=r"build\.dockerfile .*nope.*: No such file"):
        load_config(tmp_path, env={})


def test_devcontainer_dockerfile_outside_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(tmp_path / "outside" / "Dockerfile", "FROM x\n")
    write(ws / ".devcontainer" / "devcontainer.json",
          {"build": {"dockerfile": "../../outside/Dockerfile"}})
    with pytest.raises(ConfigError, match=r"resolves to .*/outside/Dockerfile, outside .*refused"):
        load_config(ws, env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    # The user's paude config directory is allowed; the bytes read are kept for `paude trust`.
    dockerfile = write(tmp_path / "xdg" / "paude" / "Dockerfile", "FROM y\n")
    write(ws / ".devcontainer" / "devcontainer.json", {"build": {"dockerfile": str(dockerfile)}})
    loaded = load_config(ws, env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert loaded.workspace_files[dockerfile] == b"FROM y\n"


def test_workspace_files_that_symlink_outside_are_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(tmp_path / "outside" / "Dockerfile", "FROM x\n")
    (ws / ".devcontainer").mkdir(parents=True)
    (ws / ".devcontainer" / "Dockerfile").symlink_to(tmp_path / "outside" / "Dockerfile")
    write(ws / ".devcontainer" / "devcontainer.json", {"build": {"dockerfile": "Dockerfile"}})
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    with pytest.raises(ConfigError, match=r"build\.dockerfile '.*/Dockerfile' resolves to "
                                          r".*/outside/Dockerfile, outside .*: refused"):
        load_config(ws, env=env)
    shutil.rmtree(ws / ".devcontainer")
    (ws / ".devcontainer.json").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match=r"devcontainer file .* resolves to /etc/passwd"):
        load_config(ws, env=env)
    (ws / ".devcontainer.json").unlink()
    (ws / "paude.json").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match=r"project file .* resolves to /etc/passwd"):
        load_config(ws, env=env)


def test_a_registry_cert_dir_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    """``podman --cert-dir`` reads each key and certificate in it: confined as a CA path."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    write(outside / "client.key", "KEY\n")
    ws.mkdir()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    refused = r"backend\.registry_cert_dir.* resolves to .*/outside.*, outside .*: refused"
    (ws / "link").symlink_to(outside)
    (ws / "certs").mkdir()
    (ws / "certs" / "client.key").symlink_to(outside / "client.key")
    for value in (str(outside), "link", "certs"):
        write(ws / "paude.json", {"backend": {"registry_cert_dir": value}})
        with pytest.raises(HostPathRefusedError, match=refused):
            load_config(ws, env=env)
    (ws / "certs" / "client.key").unlink()
    (ws / "certs" / "ca.crt").write_text("CA\n")
    loaded = load_config(ws, env=env)
    assert loaded.config.backend.registry_cert_dir == str(ws.resolve() / "certs")
