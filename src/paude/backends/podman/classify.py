"""podman's stderr → the typed errors a user can act on (one line and a hint).

A failed podman call is a ``CommandFailedError`` carrying podman's stderr;
:class:`ClassifyingRunner` turns the failures a user can hit and fix into
their own ``PaudeError`` at this boundary, the way python-on-whales'
``get_docker_exception_type`` does. Anything unknown stays a
``CommandFailedError`` (the command and its stderr tail), so callers that
match podman's text (e.g. "already exists") still see it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from paude.errors import (
    CommandFailedError,
    DeviceMissingError,
    ImageMissingError,
    PaudeError,
    StorageFullError,
)
from paude.runner import Result, Runner

_IMAGE_GONE = re.compile(r"(?:image not known|no such image|image .* not found)", re.IGNORECASE)
# podman: "setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=0 ..."
_NO_DEVICE = re.compile(r"unresolvable CDI devices? (?P<devices>.+)", re.IGNORECASE)


def classify_podman_error(err: CommandFailedError) -> PaudeError | None:
    """Return the typed error for podman's failure ``err``, or ``None`` if unknown (pure)."""
    text = err.stderr
    if "no space left on device" in text.lower():
        return StorageFullError(
            "podman's storage is full (no space left on device)",
            hint="See what uses it: podman system df; free space: podman system prune")
    verb = err.argv[1] if len(err.argv) > 1 else ""
    missing = _NO_DEVICE.search(text)
    if verb in {"run", "create", "start"} and missing:
        devices = missing.group("devices").strip().splitlines()[0]
        return DeviceMissingError(
            f"this host has no device {devices} (resources asks for it)",
            hint="Install the vendor's CDI spec (NVIDIA: sudo nvidia-ctk cdi generate"
            " --output=/etc/cdi/nvidia.yaml; list: nvidia-ctk cdi list), or drop it from"
            " resources.limits (a session that ran with it: paude stop SESSION first)")
    if verb in {"start", "run", "exec", "attach"} and _IMAGE_GONE.search(text):
        name = _container_of(err.argv)
        return ImageMissingError(
            f"the image of {name or 'the container'} was removed",
            hint="Run: paude stop SESSION, then paude in its workspace (it rebuilds the image)")
    return None


def _container_of(argv: Sequence[str]) -> str:
    if "--name" in argv:
        index = list(argv).index("--name")
        return argv[index + 1] if index + 1 < len(argv) else ""
    return argv[-1] if argv and argv[1:2] == ["start"] else ""


class ClassifyingRunner:
    """A runner whose podman failures come out as typed errors (see module doc)."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Result:
        """Run ``argv`` through the inner runner; classify a podman failure."""
        try:
            return self.inner.run(argv, timeout=timeout, input=input, env=env, check=check)
        except CommandFailedError as err:
            known = classify_podman_error(err)
            if known is None:
                raise
            raise known from err

    def follow(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run ``argv`` line by line (builds; the caller reads the exit code and the log)."""
        return self.inner.follow(argv, timeout=timeout, on_line=on_line, env=env)

    def stream(
        self, argv: Sequence[str], *, timeout: float | None, env: Mapping[str, str] | None = None
    ) -> int:
        """Run ``argv`` on our stdio (the exit code passes through)."""
        return self.inner.stream(argv, timeout=timeout, env=env)

    def exec_replace(self, argv: Sequence[str]) -> None:
        """Replace this process with ``argv``."""
        self.inner.exec_replace(argv)
