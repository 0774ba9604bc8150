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
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from paude.container.files import (
    CA_CONTEXT_NAME,
    ImageKind,
    read_shipped,
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
from paude.session_lock import image_lock

CONTAINERFILE = "Containerfile"
USER_BASE_CONTAINERFILE = "Containerfile.user-base"
MANAGED_BY_LABEL = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
BUILD_LOG_TAIL_LINES = 30
# What podman says when the FROM image is neither local nor pullable.
_PULL_FAILURES = ("initializing source", "pinging container registry", "manifest unknown")

# An image reference: registry/name[:tag][@digest].
_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")


class BuildDisplay(Protocol):
    """Where a build's output lines go while it runs (a backend's reporter fits)."""

    def follow(self, what: str, *, done: str) -> AbstractContextManager[Callable[[str], None]]:
        """Show ``what`` live while the block feeds lines; ``done`` starts the summary."""
        ...


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
        if self.kind not in ("agent", "proxy", "gateway"):
            raise ConfigError(f"unknown image kind {self.kind!r}: expected agent/proxy/gateway")
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
    has_ca = spec.kind in ("agent", "gateway") and spec.ca_bundle is not None
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
        context[shipped.name] = read_shipped(shipped)
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
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)


def ensure_image(
    runner: Runner,
    spec: ImageSpec,
    *,
    rebuild: bool = False,
    on_build: Callable[[str], None] | None = None,
    display: BuildDisplay | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> str:
    """Return the tag of ``spec``'s image, building it first when it is missing.

    ``on_build`` is called with the tag just before a build starts (a
    preflight may raise there); ``display`` shows the build's progress. The
    whole output goes to the build's log file as it comes. One paude at a
    time builds a tag (:func:`paude.session_lock.image_lock`); ``on_wait``
    gets a line when this one waits for another's build (then it uses that).

    Raises:
        ImageBuildError: the build failed; the message ends with its log.
    """
    tag = build_image_tag(spec)
    if not rebuild and _image_exists(runner, tag):
        return tag
    with image_lock(tag, on_wait=on_wait or (lambda _: None)):
        if not rebuild and _image_exists(runner, tag):  # built while we waited
            return tag
        if on_build is not None:
            on_build(tag)
        _build_all(runner, spec, tag, display)
    return tag


def _image_exists(runner: Runner, tag: str) -> bool:
    found = runner.run(["podman", "image", "exists", tag], timeout=TIMEOUT_INSPECT, check=False)
    return found.returncode == 0


def _build_all(runner: Runner, spec: ImageSpec, tag: str, display: BuildDisplay | None) -> None:
    """Build ``spec``'s image as ``tag`` (a devcontainer Dockerfile first, if any)."""
    with tempfile.TemporaryDirectory(prefix="paude-build-") as context_dir:
        write_context(build_context(spec), context_dir)
        base_argv = build_user_base_argv(spec, context_dir)
        if base_argv is not None:
            run_build(runner, base_argv, what="the devcontainer Dockerfile", display=display)
        run_build(runner, build_image_argv(spec, context_dir, tag),
                   what=f"the {spec.kind} image {tag}", display=display)


@contextmanager
def _quiet(what: str, *, done: str) -> Iterator[Callable[[str], None]]:
    yield lambda line: None


def run_build(runner: Runner, argv: list[str], *, what: str,
               display: BuildDisplay | None) -> None:
    """Run one ``podman build``, its whole output to its log file, shown on ``display``.

    Raises:
        ImageBuildError: the build failed; the message ends with its log's tail.
    """
    log_path = build_log_path(argv[argv.index("-t") + 1])
    follow = display.follow if display is not None else _quiet
    with _open_log(log_path) as log, follow(f"Building {what}", done=f"Built {what}") as feed:
        def on_line(line: str) -> None:
            log.write(line + "\n")
            feed(line)

        result = runner.follow(argv, timeout=TIMEOUT_BUILD, on_line=on_line)
        if result.returncode != 0:  # raised inside: no "Built ..." summary
            tail = "\n".join(result.stdout.strip().splitlines()[-BUILD_LOG_TAIL_LINES:])
            raise ImageBuildError(
                f"building {what} failed (exit code {result.returncode}):\n{tail}"
                f"\nFull log: {log_path}",
                hint=_build_hint(tail),
            )


@contextmanager
def _open_log(path: Path) -> Iterator[IO[str]]:
    """Open a build's log file (replacing the last one), line-buffered so a hung build has one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", buffering=1) as handle:
        yield handle


def _build_hint(log_tail: str) -> str:
    if "self-signed certificate" in log_tail or "unable to get local issuer" in log_tail:
        return "A TLS proxy intercepts HTTPS: configure its CA as the extra CA bundle."
    if any(text in log_tail for text in _PULL_FAILURES):
        return "The base image is not available locally and cannot be pulled: pull it first."
    return "Fix the cause above, then retry; run 'podman build' with the same inputs to debug."
