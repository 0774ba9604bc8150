"""Pick a backend by id. Imports are lazy so the podman path stays fast."""

from __future__ import annotations

from paude.backends.base import Backend, Reporter
from paude.config.models import BACKENDS, PaudeConfig
from paude.errors import ConfigError
from paude.runner import Runner


def get_backend(
    name: str, *, config: PaudeConfig, runner: Runner, reporter: Reporter
) -> Backend:
    """Return the backend called ``name``.

    Raises:
        ConfigError: ``name`` is not a known backend.
    """
    if name == "podman":
        from paude.backends.podman.backend import PodmanBackend

        return PodmanBackend(config, runner=runner, reporter=reporter)
    if name == "openshift":
        from paude.backends.openshift.backend import OpenShiftBackend

        return OpenShiftBackend(config, runner=runner, reporter=reporter)
    raise ConfigError(
        f"unknown backend {name!r}", hint=f"Use one of: {', '.join(BACKENDS)}."
    )
