"""paude's container images: the shipped files and the image builders."""

from paude.container.files import AGENT_HOME, ImageKind, render_containerfile
from paude.container.image import (
    ImageSpec,
    build_context,
    build_image_argv,
    build_image_tag,
    ensure_image,
)
from paude.facts import (
    AGENT_UID,
    DEFAULT_BASE_IMAGE,
    DEFAULT_CLAUDE_CODE_VERSION,
    DEFAULT_WORKSPACE,
    ENTRYPOINT_PATH,
    PROXY_PORT,
    SEED_DIR,
    SQUID_CONF_PATH,
    TMUX_CONF_PATH,
)

__all__ = [
    "AGENT_HOME",
    "AGENT_UID",
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_CLAUDE_CODE_VERSION",
    "DEFAULT_WORKSPACE",
    "ENTRYPOINT_PATH",
    "PROXY_PORT",
    "SEED_DIR",
    "SQUID_CONF_PATH",
    "TMUX_CONF_PATH",
    "ImageKind",
    "ImageSpec",
    "build_context",
    "build_image_argv",
    "build_image_tag",
    "ensure_image",
    "render_containerfile",
]
