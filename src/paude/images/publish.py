"""Make images available in a registry: check once, build and push only what is missing.

The thin executor over the pure parts of this package. Per image: one
manifest request (``skopeo inspect --raw``); when the registry already holds
that content hash, its digest is the answer and nothing is built or pushed.
Otherwise the image is built locally if needed (:func:`ensure_image`, the
same builder podman sessions use) and pushed with ``podman push``, which
uploads only the layers the registry lacks.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from paude.container.image import ImageSpec, build_image_tag, ensure_image
from paude.images.argv import build_inspect_argv, build_push_argv
from paude.images.auth import temporary_auth_file
from paude.images.failures import classify_failure, is_missing
from paude.images.preflight import run_preflight
from paude.images.refs import (
    RegistryTarget,
    build_pull_ref,
    build_push_ref,
    manifest_digest,
)
from paude.runner import TIMEOUT_BUILD, TIMEOUT_INSPECT, Runner

_BLOB_RE = re.compile(r"^Copying blob (sha256:[0-9a-f]+)", re.MULTILINE)


class Progress(Protocol):
    """Where progress lines go (a backend's ``Reporter`` fits)."""

    def info(self, message: str) -> None:
        """Print a line of progress."""
        ...

    def follow(self, what: str, *, done: str) -> AbstractContextManager[Callable[[str], None]]:
        """Show a build's or push's live line while the block feeds it output lines."""
        ...


@dataclass(frozen=True)
class PublishedImage:
    """An image as the cluster will run it."""

    local_tag: str  # localhost/paude-<kind>:<hash>
    push_ref: str  # <push prefix>/paude-<kind>:<hash>
    pull_ref: str  # <pull prefix>/paude-<kind>@sha256:...
    pushed: bool  # False: the registry already had it (one manifest check)
    layers: int = 0  # layers in the pushed image (podman uploads only those missing)


def parse_image_size(inspect_json: str) -> tuple[int, int]:
    """Return (layers, bytes) of a local image from ``podman image inspect`` JSON."""
    (image,) = json.loads(inspect_json)
    return len((image.get("RootFS") or {}).get("Layers") or []), int(image.get("Size") or 0)


def render_size(size: int) -> str:
    """Return ``1.42 GB``, ``292 MB`` or ``12 kB`` (decimal units, as podman shows them)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            value = size / scale
            return f"{value:.2f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size} B"


def describe_image(runner: Runner, local_tag: str) -> tuple[str, str]:
    """Return ``(" (11 layers, 1.42 GB)", " (1.42 GB)")`` for the push's live and done lines.

    Both are "" when podman cannot tell (the push goes on without them).
    """
    argv = ["podman", "image", "inspect", "--format", "json", local_tag]
    result = runner.run(argv, timeout=TIMEOUT_INSPECT, check=False)
    try:
        layers, size = parse_image_size(result.stdout)
    except (ValueError, TypeError, KeyError, AttributeError):
        return "", ""
    return f" ({layers} layers, {render_size(size)})", f" ({render_size(size)})"


def parse_push_layers(output: str) -> int:
    """Return how many layers ``podman push`` output lists."""
    return len(set(_BLOB_RE.findall(output)))


def check_image(
    runner: Runner, target: RegistryTarget, local_tag: str, authfile: str | None
) -> str | None:
    """Return the pull reference of ``local_tag`` if the registry has it, else None.

    Raises:
        RegistryError: the registry is unreachable or refused the login.
    """
    ref = build_push_ref(target, local_tag)
    argv = build_inspect_argv(target, ref, authfile)
    result = runner.run(argv, timeout=TIMEOUT_INSPECT, check=False)
    if result.returncode == 0:
        raw = result.stdout.encode()
        return build_pull_ref(target, local_tag, manifest_digest(raw))
    if is_missing(result.stderr):
        return None
    raise classify_failure(result.stderr, target=target, action="check")


def push_image(
    runner: Runner, target: RegistryTarget, local_tag: str, authfile: str | None,
    *, on_line: Callable[[str], None] = lambda line: None,
) -> PublishedImage:
    """Push ``local_tag`` (already built) and return it pinned by the pushed digest.

    Raises:
        RegistryError: unreachable, login refused, no permission, quota.
    """
    ref = build_push_ref(target, local_tag)
    with tempfile.TemporaryDirectory(prefix="paude-push-") as work:
        digestfile = os.path.join(work, "digest")
        argv = build_push_argv(target, local_tag, ref, authfile=authfile, digestfile=digestfile)
        result = runner.follow(argv, timeout=TIMEOUT_BUILD, on_line=on_line)
        if result.returncode != 0:
            raise classify_failure(result.stdout, target=target, action="push")
        with open(digestfile, encoding="ascii") as handle:
            digest = handle.read().strip()
    layers = parse_push_layers(result.stdout)
    return PublishedImage(local_tag, ref, build_pull_ref(target, local_tag, digest), True, layers)


def _preflight_of(spec: ImageSpec) -> Callable[[str], None]:
    def preflight(tag: str) -> None:  # a second now instead of a failed build minutes on
        run_preflight([spec], os.environ)

    return preflight


def publish_images(
    runner: Runner,
    specs: Sequence[ImageSpec],
    target: RegistryTarget,
    *,
    reporter: Progress,
    rebuild: bool = False,
) -> list[PublishedImage]:
    """Return every image of ``specs`` pinned by digest, pushing those the registry lacks.

    ``rebuild`` builds and pushes even when the registry has the hash.

    Raises:
        RegistryError: see :func:`check_image` and :func:`push_image`.
        ImageBuildError: a missing image failed to build.
    """
    out: list[PublishedImage] = []
    with temporary_auth_file(target) as authfile:
        for spec in specs:
            tag = build_image_tag(spec)
            pinned = None if rebuild else check_image(runner, target, tag, authfile)
            if pinned is not None:
                out.append(PublishedImage(tag, build_push_ref(target, tag), pinned, False))
                continue
            ensure_image(runner, spec, rebuild=rebuild, display=reporter,
                         on_build=_preflight_of(spec), on_wait=reporter.info)
            live, done = describe_image(runner, tag)  # the summary counts the layers
            with reporter.follow(f"Pushing {tag}{live} to {target.push_prefix}",
                                 done=f"Pushed {tag}{done} to {target.push_prefix}") as feed:
                image = push_image(runner, target, tag, authfile, on_line=feed)
            out.append(image)
    return out
