"""Which images a session uses, from config and the session spec (pure; both backends)."""

from __future__ import annotations

from paude.backends.base import SessionSpec
from paude.config.models import PaudeConfig
from paude.container.image import ImageSpec
from paude.facts import DEFAULT_BASE_IMAGE


def agent_image_spec(config: PaudeConfig, spec: SessionSpec) -> ImageSpec:
    """Return the agent image for ``spec``: config, devcontainer base and extra CAs."""
    image = config.image
    return ImageSpec(
        kind="agent",
        base_image=spec.base_image or image.base,
        claude_code_version=image.claude_code_version,
        packages=image.packages,
        setup_command=image.setup_command,
        ca_bundle=spec.ca_bundle,
        dockerfile=spec.dockerfile,
    )


def proxy_image_spec(config: PaudeConfig) -> ImageSpec:
    """Return the proxy image: squid on paude's own base, whatever the config says.

    The proxy enforces the allowlist, so nothing a workspace configures
    (``image.base``, a devcontainer image) may replace what it is built from.
    ``config`` is taken for symmetry with :func:`agent_image_spec` only.
    """
    del config
    return ImageSpec(kind="proxy", base_image=DEFAULT_BASE_IMAGE)


def has_gateway(spec: SessionSpec) -> bool:
    """Answer whether ``spec``'s session gets a model gateway (restricted, with a credential)."""
    return not spec.allow_network and spec.model_auth is not None


def gateway_image_spec(spec: SessionSpec) -> ImageSpec:
    """Return the model gateway's image: paude's own base, trusting the extra CAs.

    Like the proxy, nothing a workspace configures may change what it is built from.
    """
    return ImageSpec(kind="gateway", base_image=DEFAULT_BASE_IMAGE, ca_bundle=spec.ca_bundle)
