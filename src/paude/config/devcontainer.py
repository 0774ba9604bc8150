"""Read the parts of ``devcontainer.json`` that paude honours.

Only the image (``image`` or ``build.dockerfile``) is used. Fields that would
weaken the sandbox are ignored with a warning naming each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paude.errors import ConfigError

CANDIDATES = (".devcontainer/devcontainer.json", ".devcontainer.json")
IGNORED_FOR_SECURITY = (
    "privileged",
    "capAdd",
    "securityOpt",
    "mounts",
    "runArgs",
    "init",
    "forwardPorts",
    "appPort",
    "workspaceMount",
)
IGNORED_UNSUPPORTED = ("features", "postCreateCommand", "postStartCommand", "dockerComposeFile")


@dataclass(frozen=True)
class DevcontainerSettings:
    """The custom image a devcontainer file asks for."""

    path: Path
    image: str | None = None
    dockerfile: str | None = None  # the Dockerfile's text
    dockerfile_path: Path | None = None


def _parse(path: Path) -> dict[str, Any]:
    import json5  # devcontainer.json allows comments and trailing commas

    try:
        data = json5.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"{path}: {err}", hint=f"Fix the JSON syntax in {path}.") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


def _dockerfile(path: Path, build: object) -> tuple[str | None, Path | None]:
    if build is None:
        return None, None
    if not isinstance(build, dict) or not isinstance(build.get("dockerfile"), str):
        raise ConfigError(f"{path}: build.dockerfile: must be a string path")
    dockerfile = (path.parent / build["dockerfile"]).resolve()
    try:
        return dockerfile.read_text(encoding="utf-8"), dockerfile
    except OSError as err:
        raise ConfigError(f"{path}: build.dockerfile: cannot read {dockerfile}") from err


def load_devcontainer(workspace: Path) -> tuple[DevcontainerSettings | None, tuple[str, ...]]:
    """Return the devcontainer settings of ``workspace`` (if any) and warnings."""
    path = next((workspace / c for c in CANDIDATES if (workspace / c).is_file()), None)
    if path is None:
        return None, ()
    data = _parse(path)
    warnings = [
        f"{path}: '{key}' is ignored: paude does not honour it for security"
        for key in IGNORED_FOR_SECURITY
        if key in data
    ]
    warnings += [f"{path}: '{key}' is not supported and is ignored" for key in IGNORED_UNSUPPORTED
                 if key in data]
    image = data.get("image")
    if image is not None and not isinstance(image, str):
        raise ConfigError(f"{path}: image: must be a string")
    text, dockerfile_path = _dockerfile(path, data.get("build"))
    if image is None and text is None:
        return None, tuple(warnings)
    return DevcontainerSettings(path, image, text, dockerfile_path), tuple(warnings)
