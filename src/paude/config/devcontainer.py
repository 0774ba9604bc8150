"""Read the parts of ``devcontainer.json`` that paude honours.

Only the image (``image`` or ``build.dockerfile``) is used. Fields that would
weaken the sandbox are ignored with a warning naming each of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paude.errors import ConfigError
from paude.trust.refuse import read_confined

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


def _parse(raw: bytes, path: Path) -> dict[str, Any]:
    import json5  # devcontainer.json allows comments and trailing commas

    try:
        data = json5.loads(raw.decode("utf-8", errors="replace"))
    except ValueError as err:
        raise ConfigError(f"{path}: {err}", hint=f"Fix the JSON syntax in {path}.") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


def _dockerfile(
    path: Path, build: object, roots: Sequence[Path]
) -> tuple[bytes | None, Path | None]:
    if build is None:
        return None, None
    if not isinstance(build, dict) or not isinstance(build.get("dockerfile"), str):
        raise ConfigError(f"{path}: build.dockerfile: must be a string path")
    return read_confined(path.parent / build["dockerfile"], roots,
                         what=f"{path}: build.dockerfile")


@dataclass(frozen=True)
class DevcontainerFiles:
    """What the devcontainer loader read: settings, warnings and every file's bytes."""

    settings: DevcontainerSettings | None = None
    warnings: tuple[str, ...] = ()
    files: Mapping[Path, bytes] = field(default_factory=dict)


def load_devcontainer(workspace: Path, roots: Sequence[Path] = ()) -> DevcontainerFiles:
    """Return the devcontainer settings of ``workspace`` (if any), warnings and raw files.

    ``build.dockerfile`` must resolve (symlinks first) inside ``workspace`` or
    one of ``roots``.

    Raises:
        ConfigError: a malformed file; HostPathRefusedError for a Dockerfile elsewhere.
    """
    path = next((workspace / c for c in CANDIDATES if (workspace / c).is_file()), None)
    if path is None:
        return DevcontainerFiles()
    raw = read_confined(path, [workspace, *roots], what="devcontainer file")[0]
    files: dict[Path, bytes] = {path: raw}
    data = _parse(raw, path)
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
    text, dockerfile_path = _dockerfile(path, data.get("build"), [workspace, *roots])
    if text is not None and dockerfile_path is not None:
        files[dockerfile_path] = text
    if image is None and text is None:
        return DevcontainerFiles(None, tuple(warnings), files)
    settings = DevcontainerSettings(path, image, _decode(text), dockerfile_path)
    return DevcontainerFiles(settings, tuple(warnings), files)


def _decode(text: bytes | None) -> str | None:
    return None if text is None else text.decode("utf-8", errors="replace")
