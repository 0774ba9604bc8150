"""Build paude's agent and proxy images: pure builders plus one thin executor.

The builders (:func:`build_context`, :func:`build_image_tag`,
:func:`build_image_argv`) return data and touch nothing; :func:`ensure_image`
is the only function that runs podman.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paude.container.files import (
    CA_CONTEXT_NAME,
    ImageKind,
    read_data,
    render_containerfile,
    shipped_files,
)
from paude.errors import ConfigError, ImageBuildError
from paude.facts import (
    AGENT_VERSION,
    DEFAULT_BASE_IMAGE,
    DEFAULT_CLAUDE_CODE_VERSION,
    PACKAGE_EXAMPLES,
    is_debian_package,
)
from paude.naming import LABEL_MANAGED_BY, MANAGED_BY
from paude.paths import build_log_path
from paude.runner import TIMEOUT_BUILD, TIMEOUT_INSPECT, Runner

CONTAINERFILE = "Containerfile"
USER_BASE_CONTAINERFILE = "Containerfile.user-base"
MANAGED_BY_LABEL = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
BUILD_LOG_TAIL_LINES = 30
# What podman says when the FROM image is neither local nor pullable.
_PULL_FAILURES = ("initializing source", "pinging container registry", "manifest unknown")

# An image reference: registry/name[:tag][@digest].
_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")


@dataclass(frozen=True)
class ImageSpec:
    """Everything that determines an image; the tag is a hash of it.

    ``ca_bundle`` (PEM) is trusted by the agent's build and at run time; the
    proxy image ignores it. ``dockerfile`` is the text of a user's devcontainer
    Dockerfile: it is built first (empty context, Debian-based) and used as the
    agent's base image instead of ``base_image``.
    """

    kind: ImageKind
    base_image: str = DEFAULT_BASE_IMAGE
    claude_code_version: str = DEFAULT_CLAUDE_CODE_VERSION
    packages: tuple[str, ...] = ()
    setup_command: str | None = None
    ca_bundle: bytes | None = None
    dockerfile: str | None = None

    def __post_init__(self) -> None:
        """Reject values that could not be rendered safely into a Containerfile."""
        if self.kind not in ("agent", "proxy"):
            raise ConfigError(f"unknown image kind {self.kind!r}: expected 'agent' or 'proxy'")
        bad = [p for p in self.packages if not is_debian_package(p)]
        if bad:
            raise ConfigError(
                f"invalid Debian package name(s): {', '.join(map(repr, bad))}",
                hint=f"Use Debian package names such as {PACKAGE_EXAMPLES}.",
            )
        if not AGENT_VERSION.fullmatch(self.claude_code_version):
            raise ConfigError(f"invalid agent version {self.claude_code_version!r}")
        if not _IMAGE_RE.fullmatch(self.base_image):
            raise ConfigError(f"invalid base image reference {self.base_image!r}")
        if self.setup_command is not None and not self.setup_command.strip():
            raise ConfigError("the setup command is empty")


def _digest(parts: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(parts):
        h.update(f"{len(name)}:{name}:{len(parts[name])}:".encode())
        h.update(parts[name])
    return h.hexdigest()[:12]


def build_user_base_tag(spec: ImageSpec) -> str | None:
    """Return the tag of the image built from ``spec.dockerfile``, if there is one."""
    if spec.dockerfile is None or spec.kind != "agent":
        return None
    digest = _digest({USER_BASE_CONTAINERFILE: spec.dockerfile.encode()})
    return f"localhost/paude-user-base:{digest}"


def build_context(spec: ImageSpec) -> dict[str, bytes]:
    """Return the build context of ``spec``: relative path -> file content."""
    has_ca = spec.kind == "agent" and spec.ca_bundle is not None
    text = render_containerfile(
        spec.kind,
        base_image=build_user_base_tag(spec) or spec.base_image,
        claude_code_version=spec.claude_code_version,
        packages=spec.packages,
        setup_command=spec.setup_command,
        has_ca_bundle=has_ca,
    )
    context = {CONTAINERFILE: text.encode()}
    for shipped in shipped_files(spec.kind):
        context[shipped.name] = read_data(shipped.name)
    if has_ca and spec.ca_bundle is not None:
        context[CA_CONTEXT_NAME] = spec.ca_bundle
    if spec.dockerfile is not None and spec.kind == "agent":
        context[USER_BASE_CONTAINERFILE] = spec.dockerfile.encode()
    return context


def build_image_tag(spec: ImageSpec) -> str:
    """Return ``localhost/paude-<kind>:<12 hex>``, a hash over every build input."""
    return f"localhost/paude-{spec.kind}:{_digest(build_context(spec))}"


def build_image_argv(spec: ImageSpec, context_dir: str, tag: str) -> list[str]:
    """Return the ``podman build`` argv that builds ``spec`` from ``context_dir``."""
    return _podman_build(tag, os.path.join(context_dir, CONTAINERFILE), context_dir, kind=spec.kind)


def build_user_base_argv(spec: ImageSpec, context_dir: str) -> list[str] | None:
    """Return the ``podman build`` argv of the user's Dockerfile image, if any."""
    tag = build_user_base_tag(spec)
    if tag is None:
        return None
    containerfile = os.path.join(context_dir, USER_BASE_CONTAINERFILE)
    return _podman_build(tag, containerfile, context_dir, kind="user-base")


def _podman_build(tag: str, containerfile: str, context_dir: str, *, kind: str) -> list[str]:
    # --pull=missing: never touches a registry when the base image is local
    # (machines without one), yet a fresh workstation still gets it pulled.
    return [
        "podman", "build",
        "--pull=missing",
        "--label", MANAGED_BY_LABEL,
        "--label", f"paude.io/image-kind={kind}",
        "-t", tag,
        "-f", containerfile,
        context_dir,
    ]  # fmt: skip


def write_context(context: Mapping[str, bytes], directory: str) -> None:
    """Write a build context returned by :func:`build_context` into ``directory``."""
    for name, content in context.items():
        path = os.path.join(directory, name)
        with open(path, "wb") as handle:
            handle.write(content)


def ensure_image(
    runner: Runner,
    spec: ImageSpec,
    *,
    rebuild: bool = False,
    on_build: Callable[[str], None] | None = None,
) -> str:
    """Return the tag of ``spec``'s image, building it first when it is missing.

    ``on_build`` is called with the tag just before a build starts.

    Raises:
        ImageBuildError: the build failed; the message ends with its log.
    """
    tag = build_image_tag(spec)
    exists = runner.run(["podman", "image", "exists", tag], timeout=TIMEOUT_INSPECT, check=False)
    if exists.returncode == 0 and not rebuild:
        return tag
    if on_build is not None:
        on_build(tag)
    with tempfile.TemporaryDirectory(prefix="paude-build-") as context_dir:
        write_context(build_context(spec), context_dir)
        base_argv = build_user_base_argv(spec, context_dir)
        if base_argv is not None:
            _run_build(runner, base_argv, what="the devcontainer Dockerfile")
        _run_build(runner, build_image_argv(spec, context_dir, tag), what=f"image {tag}")
    return tag


def _run_build(runner: Runner, argv: list[str], *, what: str) -> None:
    result = runner.run(argv, timeout=TIMEOUT_BUILD, check=False)
    output = result.stdout + result.stderr
    log_path = _keep_log(argv[argv.index("-t") + 1], output)
    if result.returncode == 0:
        return
    tail = "\n".join(output.strip().splitlines()[-BUILD_LOG_TAIL_LINES:])
    raise ImageBuildError(
        f"building {what} failed (exit code {result.returncode}):\n{tail}"
        f"\nFull log: {log_path}",
        hint=_build_hint(tail),
    )


def _keep_log(tag: str, output: str) -> Path:
    """Write a build's whole output to its log file (replacing the last one); return it."""
    path = build_log_path(tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(output)
    return path


def _build_hint(log_tail: str) -> str:
    if "self-signed certificate" in log_tail or "unable to get local issuer" in log_tail:
        return "A TLS proxy intercepts HTTPS: configure its CA as the extra CA bundle."
    if any(text in log_tail for text in _PULL_FAILURES):
        return "The base image is not available locally and cannot be pulled: pull it first."
    return "Fix the cause above, then retry; run 'podman build' with the same inputs to debug."
