"""Validated configuration models (``paude.json``, user defaults, flags)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from paude.domains import validate_domain
from paude.facts import (
    AGENT_VERSION,
    DEFAULT_BASE_IMAGE,
    DEFAULT_CLAUDE_CODE_VERSION,
    PACKAGE_EXAMPLES,
    is_debian_package,
)

__all__ = ["DEFAULT_BASE_IMAGE", "DEFAULT_CLAUDE_CODE_VERSION"]  # re-exported from facts
BACKENDS = ("podman", "openshift")

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_DURATION = re.compile(r"^[0-9]+(s|m|h|d)$")


def _package(name: str) -> str:
    if not is_debian_package(name):
        raise ValueError(f"'{name}' is not a Debian package name (e.g. {PACKAGE_EXAMPLES})")
    return name


Domain = Annotated[str, AfterValidator(validate_domain)]
PackageName = Annotated[str, AfterValidator(_package)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Amounts(_Model):
    """CPU and memory quantities, Kubernetes syntax."""

    cpu: str | None = None
    memory: str | None = None

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and not _QUANTITY.match(value):
            raise ValueError(f"'{value}' is not a resource quantity (e.g. '500m', '4Gi')")
        return value


class Resources(_Model):
    """Requests and limits for the agent container."""

    requests: Amounts = Amounts(cpu="1", memory="4Gi")
    limits: Amounts = Amounts(cpu="4", memory="8Gi")


class Timeouts(_Model):
    """Idle and maximum session lifetimes, e.g. ``4h``."""

    idle: str | None = None
    max: str | None = None

    @field_validator("idle", "max")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION.match(value):
            raise ValueError(f"'{value}' is not a duration (e.g. '30m', '4h', '1d')")
        return value


class BackendConfig(_Model):
    """The plan's ``backend`` section."""

    type: Literal["podman", "openshift"] = "podman"
    context: str | None = None
    namespace: str | None = None
    registry: str | None = None  # where paude pushes its images (host[:port][/path])
    pull_registry: str | None = None  # what the nodes pull from, when not ``registry``
    pull_secret: str | None = None  # an image pull Secret the nodes need for it
    registry_tls_verify: bool = True  # False: plain HTTP / unverified TLS (test registries)
    registry_cert_dir: str | None = None  # a directory holding the registry's CA (ca.crt)
    image: str | None = None
    resources: Resources = Resources()
    timeout: Timeouts = Timeouts()


class ImageConfig(_Model):
    """What goes into the agent image."""

    base: str = DEFAULT_BASE_IMAGE
    packages: tuple[PackageName, ...] = ()
    setup_command: str | None = None
    claude_code_version: str = DEFAULT_CLAUDE_CODE_VERSION

    @field_validator("claude_code_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not AGENT_VERSION.fullmatch(value):
            example = DEFAULT_CLAUDE_CODE_VERSION
            raise ValueError(f"'{value}' is not a version (e.g. '{example}' or 'latest')")
        return value


class SyncConfig(_Model):
    """The OpenShift workspace sync (a podman workspace is bind-mounted)."""

    enabled: bool = Field(
        default=True, description="Sync the pod's workspace with the local one (off: pod only)."
    )
    exclude: tuple[str, ...] = Field(
        default=(), description="Paths never synced, in gitignore syntax (beside the defaults)."
    )

    @field_validator("exclude")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import pathspec

        try:
            pathspec.GitIgnoreSpec.from_lines(value)
        except (ValueError, TypeError) as err:
            raise ValueError(f"not a gitignore pattern: {err}") from err
        return value


class PaudeConfig(_Model):
    """The whole, merged configuration."""

    backend: BackendConfig = BackendConfig()
    image: ImageConfig = ImageConfig()
    allowed_domains: tuple[Domain, ...] = Field(default=())
    extra_ca_certificates: tuple[str, ...] = Field(default=())
    sync: SyncConfig = SyncConfig()
