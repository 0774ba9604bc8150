"""A cluster session's images: built with the podman builders, pushed, run by digest.

``backend.image`` set: that image is used as given (the user pushes it).
Otherwise, when there is a registry (see :mod:`.imageregistry`), the agent
and proxy images (and the model gateway's, when the session has one) are
checked, built and pushed as needed, and the session's pods reference them
by digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from paude.backends.base import Reporter, SessionSpec
from paude.backends.images import (
    agent_image_spec,
    gateway_image_spec,
    has_gateway,
    proxy_image_spec,
)
from paude.backends.openshift.objects import ClusterSettings
from paude.config.models import PaudeConfig
from paude.container.image import ImageSpec, build_image_tag
from paude.images.auth import temporary_auth_file
from paude.images.publish import check_image, publish_images
from paude.images.refs import RegistryTarget, build_push_ref
from paude.runner import Runner


@dataclass(frozen=True)
class SessionImages:
    """The references a session's pods run (by digest once pushed)."""

    agent: str
    proxy: str | None  # None: an --allow-network session has no proxy
    gateway: str | None = None  # None: no gateway (no credential, or --allow-network)

    @classmethod
    def of(cls, specs: Sequence[ImageSpec], refs: Sequence[str]) -> SessionImages:
        """Return the references of ``specs`` (in their order) by image kind."""
        by_kind = {spec.kind: ref for spec, ref in zip(specs, refs, strict=True)}
        return cls(by_kind["agent"], by_kind.get("proxy"), by_kind.get("gateway"))


def build_image_specs(config: PaudeConfig, spec: SessionSpec) -> list[ImageSpec]:
    """Return the images a session needs: the agent, the proxy unless unrestricted, the gateway."""
    specs = [agent_image_spec(config, spec)]
    if not spec.allow_network:
        specs.append(proxy_image_spec(config))
    if has_gateway(spec):
        specs.append(gateway_image_spec(spec))
    return specs


def publish_session_images(
    runner: Runner,
    target: RegistryTarget,
    specs: Sequence[ImageSpec],
    *,
    reporter: Reporter,
    rebuild: bool = False,
) -> SessionImages:
    """Build and push what the registry lacks; return the digests the pods run."""
    refs = [i.pull_ref for i in publish_images(runner, specs, target, reporter=reporter,
                                                rebuild=rebuild)]  # fmt: skip
    return SessionImages.of(specs, refs)


def check_session_images(
    runner: Runner, target: RegistryTarget, specs: Sequence[ImageSpec], *, reporter: Reporter
) -> SessionImages:
    """Return the digests the registry has (``--dry-run``, ``paude manifests``), pushing nothing.

    An image not pushed yet is shown by its content-hash tag, with a warning:
    the next ``paude`` start builds and pushes it and then runs it by digest.
    """
    refs: list[str] = []
    with temporary_auth_file(target) as authfile:
        for spec in specs:
            tag = build_image_tag(spec)
            pinned = check_image(runner, target, tag, authfile)
            if pinned is None:
                pinned = build_push_ref(target, tag)
                reporter.warn(f"{pinned} is not in the registry yet: paude will build and push it")
            refs.append(pinned)
    return SessionImages.of(specs, refs)


def apply_images(settings: ClusterSettings, images: SessionImages | None) -> ClusterSettings:
    """Return ``settings`` with the session's image references (unchanged for None)."""
    if images is None:
        return settings
    return replace(settings, image=images.agent, proxy_image=images.proxy or settings.proxy_image,
                   gateway_image=images.gateway or settings.gateway_image)
