"""The only module that reads configuration files.

Precedence, lowest first: built-in defaults < user file
(``$XDG_CONFIG_HOME/paude/paude.json``) < project ``paude.json`` < ``PAUDE_*``
environment < command-line flags. ``allowed_domains`` and
``extra_ca_certificates`` accumulate across sources instead of replacing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from paude.config.devcontainer import DevcontainerSettings, load_devcontainer
from paude.config.models import PaudeConfig
from paude.errors import ConfigError
from paude.trust.refuse import confine_dir, read_confined

PROJECT_FILE = "paude.json"
_ACCUMULATING = ("allowed_domains", "extra_ca_certificates")


@dataclass(frozen=True)
class LoadedConfig:
    """The merged config, what the devcontainer file asked for, and warnings."""

    config: PaudeConfig
    devcontainer: DevcontainerSettings | None = None
    warnings: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())
    # The exact bytes read from the workspace (paude.json, devcontainer files):
    # what ``paude trust`` approves is what this config was built from.
    workspace_files: Mapping[Path, bytes] = field(default_factory=dict)
    # extra_ca_certificates entries the workspace's paude.json names (confined).
    workspace_ca: tuple[str, ...] = ()


def user_config_path(env: Mapping[str, str]) -> Path:
    """Return the user-level config file path (XDG)."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "paude" / PROJECT_FILE


def _read_json(path: Path, raw: bytes | None = None) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes() if raw is None else raw)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{path}: line {err.lineno} column {err.colno}: {err.msg}",
            hint=f"Fix the JSON syntax in {path}.",
        ) from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if key in _ACCUMULATING and isinstance(value, list):
            merged[key] = [*merged.get(key, []), *value]
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if env.get("PAUDE_BACKEND"):
        layer["backend"] = {"type": env["PAUDE_BACKEND"]}
    if env.get("PAUDE_ALLOWED_DOMAINS"):
        layer["allowed_domains"] = [
            d for d in env["PAUDE_ALLOWED_DOMAINS"].split(",") if d.strip()
        ]
    if env.get("PAUDE_EXTRA_CA_CERTS"):
        layer["extra_ca_certificates"] = [
            p for p in env["PAUDE_EXTRA_CA_CERTS"].split(os.pathsep) if p
        ]
    return layer


def _validate(data: dict[str, Any], origin: str) -> PaudeConfig:
    try:
        return PaudeConfig.model_validate(data)
    except ValidationError as err:
        lines = []
        for problem in err.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                message = "unknown field"
            lines.append(f"{origin}: {where}: {message}")
        raise ConfigError(
            "\n".join(lines), hint="See docs/configuration.md for the fields paude.json accepts."
        ) from err


def _confine_cert_dir(layer: dict[str, Any], workspace: Path, roots: list[Path]) -> None:
    """Confine a workspace-named ``backend.registry_cert_dir`` as a CA path is confined,
    and name it resolved, so ``podman --cert-dir`` reads what was checked."""
    backend = layer.get("backend")
    value = backend.get("registry_cert_dir") if isinstance(backend, dict) else None
    if isinstance(value, str) and isinstance(backend, dict):
        path = Path(value).expanduser()
        path = path if path.is_absolute() else workspace / path
        backend["registry_cert_dir"] = str(
            confine_dir(path, roots, what="backend.registry_cert_dir"))


def load_config(
    workspace: Path,
    *,
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> LoadedConfig:
    """Load, merge and validate every configuration source for ``workspace``.

    Files in the workspace must resolve (symlinks first) inside it or the
    user's paude config directory.

    Raises:
        ConfigError: a file is unreadable, malformed or has a bad field.
    """
    merged: dict[str, Any] = {}
    sources = []
    roots = [user_config_path(env).parent]
    files: dict[Path, bytes] = {}
    workspace_ca: tuple[str, ...] = ()
    for path in (user_config_path(env), workspace / PROJECT_FILE):
        if path.is_file():
            raw = None
            if path.parent == workspace:
                raw = read_confined(path, [workspace, *roots], what="project file")[0]
                files[path] = raw
            layer = _read_json(path, raw)
            _validate(layer, str(path))  # name the file that holds the mistake
            if raw is not None:
                workspace_ca = tuple(layer.get("extra_ca_certificates", ()))
                _confine_cert_dir(layer, workspace, [workspace, *roots])
            merged = _merge(merged, layer)
            sources.append(str(path))
    env_layer = _env_layer(env)
    if env_layer:
        _validate(env_layer, "environment (PAUDE_*)")
        merged = _merge(merged, env_layer)
    if overrides:
        _validate(dict(overrides), "command line")
        merged = _merge(merged, overrides)
    config = _validate(merged, "configuration")
    dev = load_devcontainer(workspace, roots)
    files.update(dev.files)
    return LoadedConfig(config, dev.settings, dev.warnings, tuple(sources), files, workspace_ca)
