"""Validated configuration models (``paude.json``, user defaults, flags)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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
_EXTENDED = re.compile(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.[a-z]+/[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
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
    """CPU, memory and extended-resource quantities (Kubernetes syntax), and a pid limit.

    Any other key must be an extended resource name such as ``nvidia.com/gpu``
    (a domain, ``/``, a name); it passes through to the pod.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    cpu: str | None = None
    memory: str | None = None
    pids: int | None = Field(default=None, gt=0)

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and not _QUANTITY.match(value):
            raise ValueError(f"'{value}' is not a resource quantity (e.g. '500m', '4Gi')")
        return value

    @model_validator(mode="after")
    def _extended_names(self) -> Amounts:
        for name, value in (self.model_extra or {}).items():
            if not _EXTENDED.match(name):
                raise ValueError(
                    f"'{name}' is not a resource: use cpu, memory, pids or an extended"
                    " resource such as nvidia.com/gpu")
            if isinstance(value, bool) or not isinstance(value, (str, int)) \
                    or not str(value).isdigit():  # fmt: skip
                raise ValueError(f"{name}: '{value}' is not a whole number of devices (e.g. 1):"
                                 " extended resources are counted, as in Kubernetes")
        return self

    @property
    def extended(self) -> dict[str, str]:
        """Return the extended resources (``nvidia.com/gpu`` ...) as Kubernetes quantities."""
        return {name: str(value) for name, value in sorted((self.model_extra or {}).items())}


class Resources(_Model):
    """Requests and limits for one container (the agent's, or the proxy's)."""

    requests: Amounts = Amounts(cpu="1", memory="4Gi")
    limits: Amounts = Amounts(cpu="4", memory="8Gi")

    @model_validator(mode="after")
    def _pids_is_a_limit(self) -> Resources:
        if self.requests.pids is not None:
            raise ValueError("pids is a limit only: set resources.limits.pids")
        return self


# The proxy's own defaults: squid needs little.
PROXY_RESOURCES = Resources(
    requests=Amounts(cpu="50m", memory="64Mi"), limits=Amounts(cpu="500m", memory="256Mi"))


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
    proxy_resources: Resources = PROXY_RESOURCES
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
